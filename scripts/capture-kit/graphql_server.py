#!/usr/bin/env python3
"""A small GraphQL API for the capture kit (scripts/capture-kit/apps/graphql.sh):
ariadne (schema-first, from PyPI) served by uvicorn, HTTP/1.1 cleartext, POST /graphql.

Usage: graphql_server.py HOST PORT [ACCESS_LOG]   (run with the venv's python, see
apps/graphql.sh for the install)

Store (in memory, made afresh at every start, the same every time): 200 user ids
1..200, of which 12 are deleted (user(id) answers "not found"); user 1 is `admin`
(role admin, reads everything); the others are normal users in teams of ten
consecutive ids ((id-1)//10): a normal user may read its own record and its team's,
any other existing id answers "forbidden". Every user's password is
"<username>-Passw0rd!" (admin's: "Adm1n-Sesame-42"); tokens are random hex.

Everything GraphQL-level is ariadne's own: a failed login, a missing or forbidden user
is a GraphQL error with HTTP 200 (ariadne answers 200 whenever `data` is not null).
Introspection is on (ariadne's default), the explorer on GET /graphql too.
Ariadne 1.x has no batching and no automatic persisted queries: this server adds
batching (a JSON array of operations is run one by one, answered with an array;
at most 100 operations) and leaves persisted queries to ariadne, which answers a
hash-only request 400 {"errors":[{"message":"The query must be a string."}]}.
"""
import datetime
import logging
import secrets
import sys

from ariadne import MutationType, ObjectType, QueryType, make_executable_schema
from ariadne.asgi import GraphQL
from ariadne.asgi.handlers import GraphQLHTTPHandler
from graphql import GraphQLError
from starlette.responses import JSONResponse, PlainTextResponse
import uvicorn

TYPE_DEFS = """
type Query {
  me: User
  user(id: ID!): User
  users(first: Int, after: String): UserPage
  orders(userId: ID!): [Order]
}

type Mutation {
  login(username: String!, password: String!): AuthPayload
  createOrder(item: String!, qty: Int!): Order
  updateProfile(name: String): User
}

type User {
  id: ID!
  username: String!
  name: String!
  email: String
  team: Int
}

type UserPage {
  nodes: [User!]!
  endCursor: String
  hasNextPage: Boolean!
  totalCount: Int!
}

type Order {
  id: ID!
  userId: ID!
  item: String!
  qty: Int!
  createdAt: String!
}

type AuthPayload {
  token: String!
  user: User!
}
"""

FIRST = ["ana", "ben", "chloe", "david", "elena", "farid", "grace", "hugo", "iris", "jonas",
         "kira", "liam", "maya", "nils", "olga", "paul", "quinn", "rosa", "sami", "tara"]
LAST = ["adams", "berg", "costa", "dietrich", "evans", "fischer", "garcia", "horvat", "ito", "jensen"]
DELETED = {17, 33, 48, 59, 71, 86, 97, 112, 125, 138, 144, 163}
ITEMS = ["notebook", "pen", "stapler", "monitor", "keyboard", "mouse", "headset", "desk lamp",
         "usb cable", "chair mat"]

USERS = {}
BY_NAME = {}
for uid in range(1, 201):
    if uid in DELETED:
        continue
    if uid == 1:
        u = {"id": "1", "username": "admin", "name": "Site Admin", "email": "admin@shop.example",
             "team": 0, "role": "admin", "password": "Adm1n-Sesame-42"}
    else:
        first, last = FIRST[uid % 20], LAST[(uid // 20) % 10]
        username = "%s.%s%d" % (first, last, uid)
        u = {"id": str(uid), "username": username, "name": "%s %s" % (first.title(), last.title()),
             "email": "%s@shop.example" % username, "team": (uid - 1) // 10, "role": "user",
             "password": "%s-Passw0rd!" % username}
    USERS[uid] = u
    BY_NAME[u["username"]] = u

ORDERS = {}  # order id -> order
_t0 = datetime.datetime(2025, 3, 1, 9, 0, tzinfo=datetime.timezone.utc)
for uid in USERS:
    for k in range(uid % 4):
        oid = str(1000 + len(ORDERS))
        ORDERS[oid] = {"id": oid, "userId": str(uid), "item": ITEMS[(uid + k) % len(ITEMS)],
                       "qty": 1 + (uid * 7 + k) % 5,
                       "createdAt": (_t0 + datetime.timedelta(hours=uid * 3 + k)).isoformat()}
TOKENS = {}  # token -> user id (int)

query = QueryType()
mutation = MutationType()
user_type = ObjectType("User")


def viewer(info):
    return info.context.get("viewer")


def may_read(v, uid):
    return v is not None and (v["role"] == "admin" or int(v["id"]) == uid
                              or v["team"] == (uid - 1) // 10)


def need_viewer(info):
    v = viewer(info)
    if v is None:
        raise GraphQLError("unauthenticated")
    return v


def parse_id(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise GraphQLError("not found")


@query.field("me")
def resolve_me(_, info):
    return need_viewer(info)


@query.field("user")
def resolve_user(_, info, id):
    v = need_viewer(info)
    uid = parse_id(id)
    if uid not in USERS:
        raise GraphQLError("not found")
    if not may_read(v, uid):
        raise GraphQLError("forbidden")
    return USERS[uid]


@query.field("users")
def resolve_users(_, info, first=10, after=None):
    need_viewer(info)
    first = max(1, min(first or 10, 50))
    ids = sorted(USERS)
    start = 0
    if after:
        try:
            start = ids.index(int(after)) + 1
        except ValueError:
            raise GraphQLError("invalid cursor")
    page = ids[start:start + first]
    return {"nodes": [USERS[i] for i in page], "endCursor": str(page[-1]) if page else None,
            "hasNextPage": start + first < len(ids), "totalCount": len(ids)}


@query.field("orders")
def resolve_orders(_, info, userId):
    v = need_viewer(info)
    uid = parse_id(userId)
    if v["role"] != "admin" and int(v["id"]) != uid:
        raise GraphQLError("forbidden")
    return [o for o in ORDERS.values() if o["userId"] == str(uid)]


@user_type.field("email")
def resolve_email(u, info):
    # others' e-mail addresses (in users listings) are only shown to their team and admin
    return u["email"] if may_read(viewer(info), int(u["id"])) else None


@mutation.field("login")
def resolve_login(_, info, username, password):
    u = BY_NAME.get(username)
    if u is None or not secrets.compare_digest(u["password"], password):
        raise GraphQLError("invalid credentials")
    token = secrets.token_hex(20)
    TOKENS[token] = int(u["id"])
    return {"token": token, "user": u}


@mutation.field("createOrder")
def resolve_create_order(_, info, item, qty):
    v = need_viewer(info)
    if qty < 1 or qty > 100:
        raise GraphQLError("qty must be 1..100")
    oid = str(1000 + len(ORDERS))
    o = {"id": oid, "userId": v["id"], "item": item, "qty": qty,
         "createdAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    ORDERS[oid] = o
    return o


@mutation.field("updateProfile")
def resolve_update_profile(_, info, name=None):
    v = need_viewer(info)
    if name:
        v["name"] = name[:80]
    return v


def context(request, _data):
    auth = request.headers.get("authorization", "")
    v = None
    if auth.lower().startswith("bearer "):
        uid = TOKENS.get(auth[7:].strip())
        v = USERS.get(uid) if uid is not None else None
    return {"request": request, "viewer": v}


class BatchingHandler(GraphQLHTTPHandler):
    """Ariadne's HTTP handler plus batching: a JSON array of operations runs each one
    (with the same context) and answers a JSON array of results, HTTP 200."""

    async def graphql_http_server(self, request):
        if request.method == "POST" and request.headers.get("content-type", "").startswith("application/json"):
            try:
                data = await request.json()
            except ValueError:
                return PlainTextResponse("Request body is not a valid JSON", status_code=400)
            if isinstance(data, list):
                if not data or len(data) > 100:
                    return PlainTextResponse("A batch holds 1..100 operations", status_code=400)
                results = []
                for item in data:
                    _ok, result = await self.execute_graphql_query(request, item)
                    results.append(result)
                return JSONResponse(results)
        return await super().graphql_http_server(request)


schema = make_executable_schema(TYPE_DEFS, query, mutation, user_type)
app = GraphQL(schema, context_value=context, http_handler=BatchingHandler())


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    log_config = None
    if len(sys.argv) > 3:
        log_config = {
            "version": 1, "disable_existing_loggers": False,
            "formatters": {"a": {"format": "%(created).3f %(message)s"}},
            "handlers": {"f": {"class": "logging.FileHandler", "filename": sys.argv[3], "formatter": "a"}},
            "loggers": {"uvicorn": {"handlers": ["f"], "level": "INFO"},
                        "uvicorn.access": {"handlers": ["f"], "level": "INFO", "propagate": False}},
        }
    # ariadne logs every GraphQL error with its traceback: not wanted for thousands of
    # failed logins
    logging.getLogger("ariadne").setLevel(logging.CRITICAL)
    # Only /graphql is served (Starlette answers 404 for anything else).
    from starlette.applications import Starlette
    from starlette.routing import Route

    root = Starlette(routes=[Route("/graphql", app)])
    uvicorn.run(root, host=host, port=port, log_config=log_config, timeout_keep_alive=75,
                server_header=True, date_header=True)


if __name__ == "__main__":
    main()
