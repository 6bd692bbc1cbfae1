"""Answer a run's ``requires_action``: call each requested tool through the registry."""

from __future__ import annotations

from collections.abc import Callable

from openai.types.beta.threads import Run
from openai.types.beta.threads.run_submit_tool_outputs_params import ToolOutput

from assistant import presentation
from assistant.errors import AssistantError
from assistant.tools import ToolRegistry


def run_tool_calls(
    tools: ToolRegistry, run: Run, on_tool: Callable[[str, str], None]
) -> list[ToolOutput]:
    """Call each function the run asked for; errors become outputs, not raises.

    ``on_tool`` hears each tool's name with ``"running"`` before the call and
    ``"done"`` after it.
    """
    if run.required_action is None:  # requires_action without the action itself
        raise AssistantError(presentation.BACKEND_UNEXPECTED)
    outputs: list[ToolOutput] = []
    for call in run.required_action.submit_tool_outputs.tool_calls:
        on_tool(call.function.name, "running")
        output = tools.call(call.function.name, call.function.arguments)
        on_tool(call.function.name, "done")
        outputs.append({"tool_call_id": call.id, "output": output})
    return outputs
