"""Messages of the gateway's streaming calls (watch, snapshot): one JSON object per line, either
`{"result": {...}}` or `{"error": {"grpc_code": N, "message": "..."}}`."""
from __future__ import annotations

import orjson

from kpy_components.etcd.errors import EtcdCompacted, EtcdProtocolError, EtcdServerError, server_error
from kpy_components.etcd.results import Json, WatchEvent, WatchResponse, decode_bytes, decode_int, header_revision


def stream_result(line: str | bytes) -> Json:
    """The `result` of one stream line; an `error` line raises the matching EtcdServerError."""
    try:
        message = orjson.loads(line)
    except ValueError as error:
        raise EtcdProtocolError(f"etcd sent a stream line that is not JSON: {line[:100]!r}") from error
    if not isinstance(message, dict):
        raise EtcdProtocolError(f"etcd sent a stream line that is not an object: {line[:100]!r}")
    if "error" in message:
        failure = message["error"] if isinstance(message["error"], dict) else {"message": str(message["error"])}
        raise server_error(decode_int(failure.get("grpc_code", failure.get("code"))), str(failure.get("message")))
    result = message.get("result")
    if not isinstance(result, dict):
        raise EtcdProtocolError(f"etcd sent a stream line without a result: {line[:100]!r}")
    return result


def watch_response(result: Json) -> WatchResponse:
    """A watch message; a watch that etcd cancelled raises (EtcdCompacted when its start revision was compacted)."""
    if result.get("canceled"):
        compact_revision = decode_int(result.get("compact_revision"))
        if compact_revision:
            raise EtcdCompacted(f"etcd cancelled the watch: its start revision was compacted (oldest revision kept: "
                                f"{compact_revision})", compact_revision)
        raise EtcdServerError(f"etcd cancelled the watch: {result.get('cancel_reason') or 'no reason given'}")
    return WatchResponse(revision=header_revision(result),
                         events=[WatchEvent.from_json(event) for event in result.get("events", [])],
                         created=bool(result.get("created")))


def snapshot_chunk(result: Json) -> tuple[bytes, int]:
    """A piece of the snapshot and the number of bytes etcd still has to send after it."""
    return decode_bytes(result.get("blob")), decode_int(result.get("remaining_bytes"))
