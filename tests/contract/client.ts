// The client generated from docs/openapi.yaml at work: openapi-typescript turns the spec into
// the types of build/api.d.ts, tsc checks this script against them (a request or a field the
// spec does not have fails the build), and openapi-fetch makes the calls. make test runs it
// against the stack (tests/api/test_contract.py): register, log in, create a lead, list leads.
import createClient from "openapi-fetch";
import type { paths } from "./build/api.js";

const baseUrl = process.env.CRM_URL ?? "http://127.0.0.1:8080";
const client = createClient<paths>({ baseUrl });

function fail(step: string, status: number, error: unknown): never {
  console.error(`${step}: HTTP ${status} ${JSON.stringify(error)}`);
  process.exit(1);
}

const email = `client-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
const password = "correct-horse-battery";

const registered = await client.POST("/api/auth/register", {
  body: { name: "Generated Client", email, password },
});
if (!registered.data) fail("register", registered.response.status, registered.error);

const login = await client.POST("/api/auth/login", { body: { email, password } });
if (!login.data) fail("login", login.response.status, login.error);
const headers = { Authorization: `Bearer ${login.data.token}` };

const created = await client.POST("/api/leads", {
  headers,
  body: { name: "Initech upgrade", company: "Initech", value: 1200.5, source: "WEBSITE" },
});
if (!created.data) fail("create lead", created.response.status, created.error);
const lead = created.data.lead;

const listed = await client.GET("/api/leads", {
  headers,
  params: { query: { sort: "-value", limit: 10, q: "Initech" } },
});
if (!listed.data) fail("list leads", listed.response.status, listed.error);

console.log(
  JSON.stringify({
    user: login.data.user.id,
    role: login.data.user.role,
    lead: lead.id,
    location: created.response.headers.get("Location"),
    status: lead.status,
    owner: lead.owner?.id ?? null,
    listed: listed.data.data.map((l) => l.id),
    total: listed.data.page.total,
  }),
);
