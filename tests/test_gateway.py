"""The thread gateway: what each backend answer becomes for the room."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import openai
import pytest

from assistant.errors import AssistantError
from assistant.gateway import ThreadGateway


def gateway_with(answer: Callable[[httpx2.Request], httpx2.Response]) -> ThreadGateway:
    """Build a gateway whose backend is ``answer`` (no network, no retries)."""
    client = openai.OpenAI(
        api_key="test",
        base_url="http://backend/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
        max_retries=0,
    )
    return ThreadGateway(client)


def gateway_answering(status: int, body: dict | None = None) -> ThreadGateway:
    """Build a gateway whose backend answers every request with ``status``."""
    return gateway_with(
        lambda request: httpx2.Response(status, json=body or {}, request=request)
    )


def refusal(code: str | None, message: str) -> dict:
    """Return an Assistants-style error body."""
    return {
        "error": {"type": "invalid_request_error", "code": code, "message": message}
    }


def test_a_busy_store_is_worth_retrying():
    gateway = gateway_answering(503, refusal("store_busy", "locked"))
    with pytest.raises(AssistantError) as raised:
        gateway.create_thread("lobby")
    assert raised.value.reason == "busy"
    assert raised.value.message.startswith("The conversation store is busy")


def test_a_refused_request_is_not_retried_and_keeps_the_backend_answer():
    gateway = gateway_answering(400, refusal("invalid_value", "content too long"))
    with pytest.raises(AssistantError) as raised:
        gateway.create_run("thread_1", "asst_1", [], "")
    error = raised.value
    assert (error.reason, error.backend_status, error.code) == (
        "rejected",
        400,
        "invalid_value",
    )
    assert error.message == "The assistant backend refused the request (400)."


def test_an_unreachable_backend_is_said_plainly():
    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(AssistantError) as raised:
        gateway_with(unreachable).list_messages("thread_1")
    assert raised.value.message == "The assistant backend cannot be reached right now."


def test_a_missing_thread_does_not_exist_and_deletes_quietly():
    gateway = gateway_answering(404, refusal(None, "No thread found"))
    assert gateway.thread_exists("thread_gone") is False
    gateway.delete_thread("thread_gone")


def test_cancelling_an_ended_run_says_so():
    gateway = gateway_answering(400, refusal(None, "Cannot cancel run"))
    assert gateway.cancel_run("thread_1", "run_1") is False


def test_an_error_in_the_middle_of_a_stream_is_translated_too():
    frame = 'event: error\ndata: {"error": {"message": "model gone"}}\n\n'

    def answer(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, text=frame, headers=headers, request=request)

    with pytest.raises(AssistantError) as raised:
        with gateway_with(answer).stream_run("thread_1", "asst_1", [], "") as events:
            list(events)
    assert raised.value.message == "The assistant backend sent an unexpected answer."


def test_a_thread_busy_with_a_run_is_no_fault_of_the_messages():
    body = refusal("run_active", "Thread thread_1 already has an active run run_9.")
    with pytest.raises(AssistantError) as raised:
        gateway_answering(400, body).create_run("thread_1", "asst_1", [], "")
    assert (raised.value.reason, raised.value.code) == ("backend", "run_active")
