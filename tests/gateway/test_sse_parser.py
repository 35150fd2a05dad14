"""SSE events are recognised as soon as they are complete, whatever the chunking and line endings."""

from gateway.mcp.sse_events import SseParser, serialize


def test_events_split_across_chunks_are_released_when_complete():
    parser = SseParser()
    assert parser.feed(b'event: message\r\ndata: {"a"') == []
    events = parser.feed(b":1}\r\n\r\nid: 7\ndata: x\n\n")
    assert [(e.event, e.data, e.id) for e in events] == [("message", '{"a":1}', None), ("", "x", "7")]
    assert events[0].raw == b'event: message\r\ndata: {"a":1}\r\n\r\n'


def test_a_trailing_cr_waits_for_its_lf():
    parser = SseParser()
    assert parser.feed(b"data: y\r\n\r") == []
    assert [e.data for e in parser.feed(b"\n")] == ["y"]


def test_multiline_data_and_comments():
    parser = SseParser()
    events = parser.feed(b": keepalive\n\ndata: a\ndata: b\n\n")
    assert events[0].raw == b": keepalive\n\n"
    assert events[1].data == "a\nb"


def test_serialize_round_trips():
    parser = SseParser()
    [event] = parser.feed(serialize(event="endpoint", data="/messages/x/?session_id=1"))
    assert (event.event, event.data) == ("endpoint", "/messages/x/?session_id=1")


def test_a_leading_byte_order_mark_is_skipped_even_when_split():
    parser = SseParser()
    assert parser.feed(b"\xef\xbb") == []
    assert [e.data for e in parser.feed(b"\xbfdata: x\n\n")] == ["x"]


def test_the_end_of_the_stream_completes_a_last_line_ended_by_a_lone_cr():
    parser = SseParser()
    assert parser.feed(b"data: last\n\r") == []
    assert [e.data for e in parser.close()] == ["last"]


def test_an_event_the_stream_never_completes_is_dropped_not_relayed():
    parser = SseParser()
    assert parser.feed(b'data: {"half": ') == []
    assert parser.close() == []


def test_a_large_event_in_small_chunks_comes_out_whole_and_once():
    payload = b"a" * (3 * 1024 * 1024)
    stream = b"data: " + payload + b"\n\n" + b"data: next\n\n"
    parser = SseParser()
    events = [e for i in range(0, len(stream), 4096) for e in parser.feed(stream[i : i + 4096])]
    assert [len(e.data) for e in events] == [len(payload), 4]
