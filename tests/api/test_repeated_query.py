"""A single-valued query parameter given twice is refused, naming it (Starlette kept the last
value and dropped the others without a word); a list parameter may repeat."""

from __future__ import annotations

import pytest

from api.gateway_testing import Api


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/users?limit=5&limit=500", "limit"),
        ("/v1/users/u1/recommendations?k=5&explain=false&k=500", "k"),
        ("/v1/dlq/summary?limit=1&limit=2&limit=3", "limit"),
    ],
)
def test_a_repeated_single_value_is_a_422_naming_it(
    embedded_api: Api, path: str, name: str
) -> None:
    answer = embedded_api.client.get(path, headers=embedded_api.headers("read"))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "repeated_parameter"
    assert error["message"].startswith(f"`{name}` was given ")
    assert error["details"][0]["loc"] == ["query", name]


def test_a_list_parameter_and_an_unknown_one_may_repeat(embedded_api: Api) -> None:
    read = embedded_api.headers("read")
    listed = embedded_api.client.get("/v1/users?limit=5", headers=read)
    assert listed.status_code == 200, listed.text
    for path in (
        "/v1/users/u1/recommendations?exclude=a&exclude=b&k=3",
        "/v1/users?limit=5&utm=a&utm=b",
    ):
        answer = embedded_api.client.get(path, headers=read)
        assert answer.status_code == 200, answer.text
        assert "repeated_parameter" not in answer.text, path
