"""POST /recommend, GET /items, GET /healthz, the OpenAPI schema."""

from __future__ import annotations

import pytest

from promptrec.server.schemas import MAX_REQUEST_CHARS


def ids(body):
    return [item["item_id"] for item in body["items"]]


def test_health_reports_data_model_and_slots(serve):
    body = serve(concurrency=3, queue=5).get("/healthz").json()
    assert body["status"] == "ok" and body["dataset"] == "tiny"
    assert body["items"] == 24 and body["users"] == 30 and body["model"] is None
    assert body["slots"]["concurrency"] == 3 and body["slots"]["queue"] == 5 and body["slots"]["running"] == 0


def test_recommend_for_a_user_matches_the_library(serve, make_recommender):
    expected = make_recommender().recommend("1", k=4, request="space")
    response = serve().post("/recommend", json={"user_id": "1", "k": 4, "request": "space"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user_id"] == "1" and body["request"] == "space" and body["ordered_by"] == "fusion"
    assert ids(body) == [r.item_id for r in expected.items]
    assert all(item["explanation"] and item["explained_by"] == "evidence" for item in body["items"])


def test_recommend_for_an_ad_hoc_history_with_exclusions_by_title(serve, tiny):
    client = serve()
    first = client.post("/recommend", json={"history": ["Crime Thriller 1 (1990)", "121"], "k": 3}).json()
    assert first["user_id"] is None and len(first["items"]) == 3
    assert all("crime" in tiny.catalog[i].fields["genres"] for i in ids(first))
    top_title = first["items"][0]["title"]
    second = client.post("/recommend", json={"history": ["120", "121"], "k": 3, "exclude": [top_title]}).json()
    assert first["items"][0]["item_id"] not in ids(second) and len(second["items"]) == 3


def test_recommend_from_a_request_alone(serve):
    body = serve().post("/recommend", json={"request": "romantic comedy", "k": 2}).json()
    assert len(body["items"]) == 2 and body["request"] == "romantic comedy"


def test_the_model_explains_unless_asked_not_to(serve, scripted):
    client = serve(scripted)
    fused = client.post("/recommend", json={"user_id": "2", "k": 5, "use_model": False}).json()
    model = client.post("/recommend", json={"user_id": "2", "k": 5}).json()
    assert fused["ordered_by"] == "fusion" and model["ordered_by"] == "fusion"
    assert [i["item_id"] for i in model["items"]] == [i["item_id"] for i in fused["items"]]
    assert all(item["explained_by"] == "llm" for item in model["items"])
    assert all(item["explained_by"] == "evidence" for item in fused["items"])
    assert model["model_id"] == "scripted" and fused["model_id"] is None
    assert client.get("/healthz").json()["model"] == "scripted"


def test_unknown_user_is_404_with_a_clear_message(serve):
    response = serve().post("/recommend", json={"user_id": "999"})
    assert response.status_code == 404
    assert "unknown user '999'" in response.json()["detail"]


def test_unknown_title_is_422_naming_it(serve):
    response = serve().post("/recommend", json={"history": ["Nonexistent Film"]})
    assert response.status_code == 422 and "'Nonexistent Film'" in response.json()["detail"]
    response = serve().post("/recommend", json={"user_id": "1", "exclude": ["Nor This One"]})
    assert response.status_code == 422 and "'Nor This One'" in response.json()["detail"]


@pytest.mark.parametrize(("body", "message"), [
    ({"user_id": "1", "k": 0}, "k: Input should be greater than or equal to 1"),
    ({"user_id": "1", "k": 101}, "k: Input should be less than or equal to 100"),
    ({"user_id": "1", "request": "x" * (MAX_REQUEST_CHARS + 1)}, "request: String should have at most 500 characters"),
    ({"history": ["100"] * 201}, "history: List should have at most 200 items"),
    ({"user_id": "1", "history": ["100"]}, "give user_id or history, not both"),
    ({}, "give a user_id, a history of liked items, or a request"),
    ({"user_id": "1", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"user_id": ""}, "user_id: String should have at least 1 character"),
])
def test_invalid_bodies_are_422_with_the_field_named(serve, body, message):
    response = serve().post("/recommend", json=body)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    assert response.json()["detail"].startswith("invalid request: ")


def test_malformed_json_is_422(serve):
    response = serve().post("/recommend", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422 and "invalid request" in response.json()["detail"]


def test_item_search_ranks_exact_then_prefix_and_is_bounded(serve):
    client = serve(max_search_results=3)
    body = client.get("/items", params={"q": "romantic comedy 2"}).json()
    assert body["items"][0] == {"item_id": "111", "title": "Romantic Comedy 2 (1991)"}
    assert all("romantic comedy" in hit["title"].lower() for hit in body["items"])
    everything = client.get("/items", params={"q": "comedy", "limit": 50}).json()
    assert len(everything["items"]) == 3 and everything["truncated"] is True  # capped by the server
    few = client.get("/items", params={"q": "comedy", "limit": 2}).json()
    assert len(few["items"]) == 2 and few["truncated"] is True
    exact = client.get("/items", params={"q": "Crime Thriller 8 (1997)"}).json()
    assert exact["items"] == [{"item_id": "127", "title": "Crime Thriller 8 (1997)"}] and not exact["truncated"]


def test_item_search_falls_back_to_the_fuzzy_match_and_rejects_bad_queries(serve):
    client = serve()
    assert client.get("/items", params={"q": "Crime Thriler 3 (1992)"}).json()["items"][0]["item_id"] == "122"
    assert client.get("/items", params={"q": "zzzz"}).json() == {"query": "zzzz", "items": [], "truncated": False}
    assert client.get("/items", params={"q": ""}).status_code == 422
    assert client.get("/items", params={"q": "x" * 201}).status_code == 422
    assert client.get("/items", params={"q": "a", "limit": 0}).status_code == 422
    assert client.get("/items").status_code == 422


def test_openapi_documents_every_endpoint(serve):
    client = serve()
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/recommend", "/chat/{session_id}", "/items", "/users/{user_id}/forget", "/healthz"} <= set(paths)
    assert "text/event-stream" in paths["/chat/{session_id}"]["post"]["responses"]["200"]["content"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
