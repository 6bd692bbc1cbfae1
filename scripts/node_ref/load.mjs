// The load of scripts/bench_fanout.py, the same for Threadroom and the reference
// server: N socket.io clients over WebSocket in R rooms, one sender per room.
//
//   node load.mjs '{"url": "http://127.0.0.1:5020", "clients": 1000, "rooms": 1,
//                   "rate": 1, "seconds": 15, "deflate": true, "quiet": false,
//                   "first": 0}'
//
// `first` numbers this process's clients from there (people u<first>...), so that
// several load processes can share one server's rooms (scripts/bench_connections.py
// opens 10,000 sockets from several of them).
//
// Protocol with the parent (stdout lines): "ready" once every client is
// registered (the connections are then idle: the parent reads the server's RSS);
// the parent writes "go" to stdin; the sender of each room in turn sends `rate`
// messages a second in all, for `seconds`; after a drain the last line is
// "result <json>": delivery latencies (sent → received in this process, so one
// clock), deliveries seen and expected, and this process's CPU over the window.
import { io } from "socket.io-client";
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";

const opts = JSON.parse(process.argv[2]);
const { clients, rooms, rate, seconds } = opts;
// Several servers (scripts/bench_scale.py: one per shared-mode process): the k-th
// member of each room connects to urls[k % urls.length], so every room spans them
// all and its sender (k = 0) is on the first.
const urls = opts.urls ?? [opts.url];
// Several client processes share the rooms (bench_connections.py): this one's
// connections are numbered from `first`.
const first = opts.first || 0;
const CONNECT_BATCH = 50; // connections opened at once: a crowd arriving, not a SYN flood

const sockets = [];
const latencies = [];
let deliveries = 0;
const events = {}; // every event received while measuring, by name
let acks = 0;
let refused = 0;
let disconnects = 0; // connections the server closed (or lost) after registering
let measuring = false;

function connect(index) {
  const number = first + index;
  const room = `bench${number % rooms}`;
  const socket = io(urls[Math.floor(number / rooms) % urls.length], {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: 60000,
    // Browsers offer permessage-deflate on every WebSocket; engine.io-client's
    // default here does the same ({threshold: 1024}); false offers nothing.
    perMessageDeflate: opts.deflate ? { threshold: 1024 } : false,
  });
  socket.onAny((name) => {
    if (measuring) events[name] = (events[name] || 0) + 1;
  });
  socket.on("message", (message) => {
    const sent = Number(String(message.content).split(" ")[1]);
    if (measuring && Number.isFinite(sent)) {
      latencies.push(performance.now() - sent);
      deliveries += 1;
    }
  });
  return new Promise((resolve, reject) => {
    socket.once("connect_error", reject);
    socket.once("connect", () => {
      const person = { user_id: `u${number}`, name: `user${number}`, room };
      socket.emit("register", person, (ack) => {
        if (!ack || !ack.ok) return reject(new Error(`register: ${JSON.stringify(ack)}`));
        sockets[index] = { socket, room };
        socket.on("disconnect", () => { disconnects += 1; });
        resolve();
      });
    });
  });
}

async function connectRange(from, to) {
  for (let start = from; start < to; start += CONNECT_BATCH) {
    const batch = [];
    for (let i = start; i < Math.min(start + CONNECT_BATCH, to); i++) batch.push(connect(i));
    await Promise.all(batch);
  }
}

async function connectAll() {
  // Clients 0..rooms-1 are the senders, one per room, and register first: in
  // Threadroom whoever opens a room owns it and may change its settings.
  await connectRange(0, Math.min(rooms, clients));
  await connectRange(rooms, clients);
  // Threadroom's rooms answer every message by default; the reference has no
  // assistant.  `addressed` makes both pure chat fan-out (the owner, the first
  // to register, sets it; the reference server ignores the event).
  if (opts.answer === "addressed") {
    await Promise.all(
      sockets.slice(0, rooms).map(
        ({ socket }) =>
          new Promise((resolve, reject) =>
            socket.emit("room-settings", { answer_mode: "addressed" }, (ack) =>
              ack && ack.ok ? resolve() : reject(new Error(`room-settings: ${JSON.stringify(ack)}`)))),
      ),
    );
  }
}

function roomSize(room) {
  // Client i is in room i % rooms, so rooms differ by one at most.
  return Math.floor((clients - 1 - room) / rooms) + 1;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function run() {
  const senders = sockets.slice(0, rooms);
  const total = Math.round(rate * seconds);
  const cpu0 = process.cpuUsage();
  measuring = true;
  const t0 = performance.now();
  let expected = 0;
  for (let n = 0; n < total; n++) {
    const due = t0 + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const { socket } = senders[n % rooms];
    expected += roomSize(n % rooms) - 1; // everyone in the room but the sender
    const content = `bench ${performance.now().toFixed(3)}`;
    socket.emit("message", { id: `m${n}`, content }, (ack) => {
      if (ack && ack.ok) acks += 1;
      else refused += 1;
    });
  }
  // Drain: wait until everything expected arrived, or 10 s.
  const drainUntil = performance.now() + 10000;
  while (deliveries < expected && performance.now() < drainUntil) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const cpu = process.cpuUsage(cpu0);
  measuring = false;
  latencies.sort((a, b) => a - b);
  return {
    sent: total, acks, refused, expected, deliveries, disconnects,
    p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99),
    max_ms: latencies.length ? latencies[latencies.length - 1] : null,
    client_cpu_s: (cpu.user + cpu.system) / 1e6,
    events,
    window_s: (performance.now() - t0) / 1000,
  };
}

await connectAll();
console.log("ready");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === "go") break;
}
const result = await run();
console.log(`result ${JSON.stringify(result)}`);
for (const { socket } of sockets) socket.close();
process.exit(0);
