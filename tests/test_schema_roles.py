"""Each role gets its own schema: introspection shows exactly what the policy grants."""

from __future__ import annotations

from tests.conftest import GraphQLClient, error_codes

FIELDS = """
query { __schema { queryType { fields { name } } mutationType { fields { name } } types { name } } }
"""


async def _schema(client: GraphQLClient, username: str | None) -> tuple[set[str], set[str], set[str]]:
    result = await client.data(FIELDS, as_=username)
    schema = result["__schema"]
    queries = {f["name"] for f in schema["queryType"]["fields"]}
    mutation_type = schema["mutationType"]
    mutations = {f["name"] for f in mutation_type["fields"]} if mutation_type else set()
    types = {t["name"] for t in schema["types"]}
    return queries, mutations, types


async def test_anonymous_schema_holds_only_login_and_server_info(client: GraphQLClient) -> None:
    queries, mutations, types = await _schema(client, None)
    assert queries == {"serverInfo"}
    assert mutations == {"login", "refreshToken", "wechatLogin"}
    assert "Department" not in types and "LoginLogEntry" not in types


async def test_admin_sees_assign_roles_and_physician_does_not(client: GraphQLClient) -> None:
    _, admin_mutations, admin_types = await _schema(client, "admin")
    _, physician_mutations, physician_types = await _schema(client, "physician")
    assert {"assignRoles", "grantPermission", "createDepartment"} <= admin_mutations
    assert "assignRoles" not in physician_mutations
    assert "LoginLogEntry" in admin_types and "LoginLogEntry" not in physician_types
    assert "UserConnection" not in physician_types


async def test_field_outside_the_schema_fails_validation(client: GraphQLClient) -> None:
    result = await client.run("{ users { totalCount } }", as_="physician")
    assert error_codes(result) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "data" not in result
