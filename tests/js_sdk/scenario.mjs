// One pass over the Assistants v2 surface with openai-node, against the engine at
// $ENGINE_BASE_URL (key $ENGINE_API_KEY).  Prints one JSON object of what it saw;
// tests/test_engine_node_sdk.py checks it.  Any exception fails the process.
import OpenAI from "openai";

const client = new OpenAI({
  apiKey: process.env.ENGINE_API_KEY,
  baseURL: process.env.ENGINE_BASE_URL,
  maxRetries: 0,
});
const beta = client.beta;
const poll = { pollIntervalMs: 10 };
const seen = {};

const timeTool = {
  type: "function",
  function: {
    name: "get_current_time",
    description: "The current time in a timezone.",
    parameters: {
      type: "object",
      properties: { timezone: { type: "string" } },
      required: ["timezone"],
    },
  },
};

// Assistants: create, page through the list, update.
const assistant = await beta.assistants.create({ model: "demo", tools: [timeTool] });
const spare = await beta.assistants.create({ model: "demo", name: "spare" });
const listed = [];
for await (const item of beta.assistants.list({ limit: 1 })) listed.push(item.id);
seen.assistantsListed = listed;
seen.assistantIds = [assistant.id, spare.id];
await beta.assistants.update(assistant.id, { name: "Clock" });

// Threads and messages.
const thread = await beta.threads.create({ metadata: { room: "lobby" } });
seen.threadMetadata = (await beta.threads.update(thread.id, { metadata: { room: "den" } }))
  .metadata;
const question = await beta.threads.messages.create(thread.id, {
  role: "user",
  content: "what time is it in Tokyo?",
  metadata: { name: "Ann" },
});
const fetched = await beta.threads.messages.retrieve(question.id, { thread_id: thread.id });
seen.questionText = fetched.content[0].text.value;
seen.messageMetadata = (
  await beta.threads.messages.update(question.id, {
    thread_id: thread.id,
    metadata: { name: "Ann", seen: "1" },
  })
).metadata;

// A polled tool round trip, its steps, runs.list and runs.update.
const waiting = await beta.threads.runs.createAndPoll(
  thread.id,
  { assistant_id: assistant.id },
  poll,
);
seen.waitingStatus = waiting.status;
const call = waiting.required_action.submit_tool_outputs.tool_calls[0];
seen.callArguments = JSON.parse(call.function.arguments);
try {
  await beta.threads.messages.create(thread.id, { role: "user", content: "me too" });
} catch (error) {
  seen.busyCode = error.code;
}
const done = await beta.threads.runs.submitToolOutputsAndPoll(
  waiting.id,
  { thread_id: thread.id, tool_outputs: [{ tool_call_id: call.id, output: "09:30" }] },
  poll,
);
seen.doneStatus = done.status;
seen.doneUsage = done.usage;
const steps = await beta.threads.runs.steps.list(done.id, {
  thread_id: thread.id,
  include: ["step_details.tool_calls[*].file_search.results[*].content"],
});
seen.stepTypes = steps.data.map((step) => step.type);
const toolStep = await beta.threads.runs.steps.retrieve(steps.data[1].id, {
  thread_id: thread.id,
  run_id: done.id,
});
seen.toolOutput = toolStep.step_details.tool_calls[0].function.output;
seen.runsListed = (await beta.threads.runs.list(thread.id, { limit: 1 })).data.map(
  (run) => run.id,
);
seen.doneId = done.id;
seen.runMetadata = (
  await beta.threads.runs.update(done.id, { thread_id: thread.id, metadata: { k: "v" } })
).metadata;

// A streamed run with settings the demo model shows.
const stream = beta.threads.runs.stream(thread.id, {
  assistant_id: assistant.id,
  additional_messages: [{ role: "user", content: "count to 300" }],
  max_completion_tokens: 256,
});
let streamed = "";
stream.on("textDelta", (delta) => {
  streamed += delta.value;
});
const truncated = await stream.finalRun();
seen.truncated = {
  status: truncated.status,
  reason: truncated.incomplete_details?.reason,
  words: streamed.trim().split(/\s+/).length,
};
const jsonRun = await beta.threads.runs.createAndPoll(
  thread.id,
  {
    assistant_id: assistant.id,
    additional_messages: [{ role: "user", content: "hello" }],
    response_format: { type: "json_object" },
    tool_choice: "none",
  },
  poll,
);
const newest = await beta.threads.messages.list(thread.id, { limit: 1 });
seen.jsonReply = { status: jsonRun.status, reply: JSON.parse(newest.data[0].content[0].text.value) };

// Create-and-run: plain, polled, streamed.
const plain = await beta.threads.createAndRun({
  assistant_id: assistant.id,
  thread: { messages: [{ role: "user", content: "hi" }] },
});
seen.createAndRunStatus = plain.status;
const polled = await beta.threads.createAndRunPoll(
  {
    assistant_id: assistant.id,
    thread: { messages: [{ role: "user", content: "hello again" }] },
    tool_choice: { type: "function", function: { name: "get_current_time" } },
  },
  poll,
);
seen.createAndRunPoll = { status: polled.status, call: polled.required_action?.submit_tool_outputs.tool_calls[0].function.name };
const events = [];
const opened = beta.threads.createAndRunStream({
  assistant_id: assistant.id,
  thread: { messages: [{ role: "user", content: "stream please" }] },
});
opened.on("event", (event) => events.push(event.event));
seen.createAndRunStream = { status: (await opened.finalRun()).status, first: events.slice(0, 3) };

// Deleting.
seen.messageDeleted = (
  await beta.threads.messages.delete(question.id, { thread_id: thread.id })
).deleted;
seen.assistantDeleted = (await beta.assistants.delete(spare.id)).deleted;
seen.threadDeleted = (await beta.threads.delete(thread.id)).deleted;

console.log(JSON.stringify(seen));
