"""POST /chat/{session}: the event stream, session state, sessions kept apart."""

from __future__ import annotations

from promptrec.server.events import EVENTS, decode, encode


def chat(client, session, text):
    response = client.post(f"/chat/{session}", json={"text": text})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return decode(response.text)


def names(events):
    return [name for name, _ in events]


def test_without_a_model_the_list_comes_once_then_final_and_done(serve):
    events = chat(serve(), "s1", "/user 1")
    assert names(events) == ["reply", "list", "final", "done"]
    reply, fused, final = events[0][1], events[1][1], events[2][1]
    assert reply == {"session": "s1", "text": "Now recommending for user 1", "quit": False}
    assert fused["user_id"] == "1" and len(fused["items"]) == 5 and fused["items"] == final["items"]
    assert all(item["explained_by"] == "evidence" for item in fused["items"])


def test_with_a_model_explanations_follow_the_fused_list(serve, scripted):
    client = serve(scripted)
    events = chat(client, "s1", "/user 1")
    assert names(events) == ["reply", "list", *["explanation"] * 5, "final", "done"]
    fused, final = events[1][1], events[-2][1]
    explanations = [data for name, data in events if name == "explanation"]
    assert all(item["explained_by"] == "evidence" for item in fused["items"]) and fused["ordered_by"] == "fusion"
    assert all(item["explanation_note"] == "the model's reason is being written" for item in fused["items"])
    assert final["ordered_by"] == "fusion" and all(item["explained_by"] == "llm" for item in final["items"])
    assert final["explanations"]["llm"] == 5 and final["explanations"]["pending"] == 0
    assert [e["item_id"] for e in explanations] == [item["item_id"] for item in final["items"]]
    for event, item in zip(explanations, final["items"]):
        assert event["explained_by"] == "llm" and event["cited_history"] and event["explanation"] == item["explanation"]
        assert event["note"] is None
    assert {e["explanation"] for e in explanations}.isdisjoint(item["explanation"] for item in fused["items"])
    assert [e["rank"] for e in explanations] == [1, 2, 3, 4, 5]
    assert [item["item_id"] for item in final["items"]] == [item["item_id"] for item in fused["items"]]
    why = chat(client, "s1", "/why #1")[0][1]["text"]  # the session holds the model's list
    assert why.startswith(f"{final['items'][0]['title']}: {final['items'][0]['explanation']}")


def test_a_session_remembers_exclusions_and_answers_why(serve, tiny):
    client = serve()
    first = chat(client, "abc", "/user 4")[1][1]
    top = first["items"][0]
    excluded = chat(client, "abc", f"/exclude {top['item_id']}")
    assert excluded[0][1]["text"] == f"Excluded {top['title']}"
    after = excluded[-2][1]
    assert top["item_id"] not in [item["item_id"] for item in after["items"]] and len(after["items"]) == 5
    steered = chat(client, "abc", "space adventure")[-2][1]  # a new request keeps the exclusion
    assert top["item_id"] not in [item["item_id"] for item in steered["items"]]
    why = chat(client, "abc", "/why #2")
    assert names(why) == ["reply", "done"]
    second = steered["items"][1]
    assert why[0][1]["text"].startswith(f"{second['title']}: {second['explanation']}")


def test_liking_an_item_id_steers_to_it(serve, tiny):
    events = chat(serve(), "m", "/like 120")  # what the page's "more like this" button sends
    assert events[0][1]["text"] == "Noted that you like Crime Thriller 1 (1990)"
    items = events[-2][1]["items"]
    assert sum("crime" in tiny.catalog[i["item_id"]].fields["genres"] for i in items) >= 3


def test_sessions_are_kept_apart(serve):
    client = serve()
    chat(client, "one", "/user 1")
    chat(client, "two", "/user 2")
    assert chat(client, "one", "/k 3")[-2][1]["user_id"] == "1"
    assert chat(client, "two", "/k 2")[-2][1]["user_id"] == "2"
    assert client.get("/healthz").json()["sessions"] == 2


def test_text_only_answers_and_unknown_titles_are_replies_not_errors(serve):
    client = serve()
    assert names(chat(client, "t", "/help")) == ["reply", "done"]
    assert "Nothing suggested yet" in chat(client, "t", "/why 1")[0][1]["text"]
    unknown = chat(client, "t", "/exclude Nonexistent Film")
    assert names(unknown) == ["reply", "done"] and "'Nonexistent Film'" in unknown[0][1]["text"]
    assert chat(client, "t", "/user nobody")[0][1]["text"].startswith("unknown user 'nobody': not in tiny")


def test_invalid_chat_input_is_422(serve):
    client = serve()
    assert client.post("/chat/bad id!", json={"text": "hi"}).status_code == 422
    assert client.post(f"/chat/{'x' * 65}", json={"text": "hi"}).status_code == 422
    too_long = client.post("/chat/ok", json={"text": "x" * 501})
    assert too_long.status_code == 422 and "text: String should have at most 500 characters" in too_long.json()["detail"]
    assert client.post("/chat/ok", json={}).status_code == 422


def test_ending_a_session(serve):
    client = serve()
    chat(client, "bye", "/user 1")
    assert client.delete("/chat/bye").status_code == 204
    assert client.delete("/chat/bye").status_code == 404
    assert client.get("/healthz").json()["sessions"] == 0
    assert "Nothing suggested yet" in chat(client, "bye", "/why 1")[0][1]["text"]  # a fresh session


def test_encode_decode_round_trip():
    text = encode("reply", {"text": "a\nb <b>"}) + encode("done", {})
    assert decode(text) == [("reply", {"text": "a\nb <b>"}), ("done", {})]
    assert "\n" not in text.split("data: ")[1].split("\n\n")[0]  # one data line per event
    assert set(EVENTS) == {"reply", "list", "explanation", "final", "error", "done"}


def test_a_failing_model_pass_keeps_the_list_and_sends_an_error_event(serve, make_recommender, scripted):
    from promptrec import Recommender
    from promptrec.errors import ModelError

    class Unreachable(Recommender):  # the model server goes away after the list was sent
        def recommend(self, *args, on_event=None, **kwargs):
            for event in self.recommend_stream(*args, **kwargs):
                on_event(event)
                raise ModelError("the model server at 127.0.0.1:9 refused the connection")

    events = chat(serve(recommender=make_recommender(scripted, cls=Unreachable)), "e", "/user 1")
    assert names(events) == ["reply", "list", "error", "done"]
    assert events[2][1] == {"status": 502, "detail": "the model server at 127.0.0.1:9 refused the connection"}
    assert len(events[1][1]["items"]) == 5
