def test_requester_creates_a_ticket_and_sees_it_in_the_list(as_requester):
    created = as_requester.post("/api/v1/tickets/", {"title": "Laptop will not boot"}, format="json")
    assert created.status_code == 201, created.content
    listed = as_requester.get("/api/v1/tickets/")
    assert [ticket["id"] for ticket in listed.json()["results"]] == [created.json()["id"]]
