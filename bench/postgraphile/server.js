// The PostGraphile 4 peer of bench/run.py (bench/README.md), started by the harness:
//   PORT=8714 PG_URL=postgres://postgres@127.0.0.1:5432/followup_bench_pg_10k JWT_SECRET=... node server.js
// Library mode with the options PostGraphile's documentation recommends for production (no watch, no GraphiQL,
// no query log, terse errors). It verifies our access token itself (HS256, same secret, no audience), switches to
// the reader role that the chief's data scope applies to (row-level security on `patient`, bench/pg_peer.py) and
// passes the token's claims as `jwt.claims.*` settings; it does not look the session up, write audit rows or
// check the account's status.
"use strict";

const http = require("http");
const { postgraphile } = require("postgraphile");

const port = Number(process.env.PORT);
const handler = postgraphile(process.env.PG_URL, "public", {
  jwtSecret: process.env.JWT_SECRET,
  jwtVerifyOptions: { algorithms: ["HS256"], audience: [] },
  pgDefaultRole: process.env.PG_ROLE || "followup_bench_reader",
  simpleCollections: "both",
  disableDefaultMutations: true,
  ignoreRBAC: false,
  setofFunctionsContainNulls: false,
  watchPg: false,
  retryOnInitFail: false,
  graphiql: false,
  enhanceGraphiql: false,
  disableQueryLog: true,
  extendedErrors: [],
  showErrorStack: false,
  legacyRelations: "omit",
});

const server = http.createServer(handler);
server.keepAliveTimeout = 60000;
server.listen(port, "127.0.0.1", () => console.log(`postgraphile peer on 127.0.0.1:${port}`));
process.on("SIGINT", () => server.close(() => process.exit(0)));
process.on("SIGTERM", () => process.exit(0));
