// TypeScript types of the head-office routes the office pages call, generated from the server's
// committed OpenAPI document (sync-server/openapi.json, itself built from the Rust types and
// kept current by `cargo test -p kaunter-sync-server --test openapi`). Types the desk's
// wire.ts already declares (generated from kaunter-protocol) are imported from it, not
// repeated.
//
// Run `npm --prefix ui run api-types` to rewrite ui/src/office/api-types.ts; the unit test
// src/office/api-types.test.ts fails while that file is stale.

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The routes the office pages call, as `METHOD path`. */
export const OFFICE_OPERATIONS = [
  "GET /v1/branches",
  "GET /v1/devices",
  "GET /v1/subscription",
  "GET /v1/payments",
  "GET /v1/payments/invoice",
  "GET /v1/users",
  "GET /v1/emergency-access",
  "POST /v1/emergency-access/review",
  "POST /v1/subscription/cancel",
  "PUT /v1/subscription/modules",
];

const REF_PREFIX = "#/components/schemas/";

const refName = (ref) => {
  if (!ref.startsWith(REF_PREFIX)) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(REF_PREFIX.length);
};

/** Every schema name `schema` refers to, directly or not, added to `found`. */
function collectRefs(schema, schemas, found) {
  if (schema === null || typeof schema !== "object") return;
  if (Array.isArray(schema)) {
    for (const item of schema) collectRefs(item, schemas, found);
    return;
  }
  if (typeof schema.$ref === "string") {
    const name = refName(schema.$ref);
    if (!found.has(name)) {
      if (!(name in schemas)) throw new Error(`$ref to unknown schema ${name}`);
      found.add(name);
      collectRefs(schemas[name], schemas, found);
    }
  }
  for (const value of Object.values(schema)) collectRefs(value, schemas, found);
}

const literal = (value) => (value === null ? "null" : JSON.stringify(value));

/** The TypeScript type of a JSON schema (the subset schemars writes for OpenAPI 3.0). */
function typeOf(schema, indent) {
  let type;
  if (schema.$ref) {
    type = refName(schema.$ref);
  } else if (schema.anyOf || schema.oneOf) {
    type = [...new Set((schema.anyOf ?? schema.oneOf).map((member) => typeOf(member, indent)))].join(" | ");
  } else if (Array.isArray(schema.enum)) {
    type = schema.enum.map(literal).join(" | ");
  } else if (schema.type === "string") {
    type = "string";
  } else if (schema.type === "integer" || schema.type === "number") {
    type = "number";
  } else if (schema.type === "boolean") {
    type = "boolean";
  } else if (schema.type === "array") {
    type = `Array<${typeOf(schema.items ?? {}, indent)}>`;
  } else if (schema.type === "object" || schema.properties) {
    type = objectType(schema, indent);
  } else {
    type = "unknown";
  }
  if (schema.nullable && !type.split(" | ").includes("null")) type += " | null";
  return type;
}

function comment(description, indent) {
  if (!description) return "";
  const lines = description.split("\n");
  return `${indent}/**\n${lines.map((line) => `${indent} * ${line}`.trimEnd()).join("\n")}\n${indent} */\n`;
}

function objectType(schema, indent) {
  const properties = Object.entries(schema.properties ?? {});
  if (properties.length === 0) return "Record<string, unknown>";
  const required = new Set(schema.required ?? []);
  const inner = `${indent}  `;
  const lines = properties.map(
    ([name, property]) =>
      `${comment(property.description, inner)}${inner}${name}${required.has(name) ? "" : "?"}: ${typeOf(property, inner)};`,
  );
  return `{\n${lines.join("\n")}\n${indent}}`;
}

function operation(document, spec) {
  const [method, path] = spec.split(" ");
  const found = document.paths?.[path]?.[method.toLowerCase()];
  if (!found) throw new Error(`the OpenAPI document has no ${spec}`);
  return found;
}

const jsonSchema = (content) => content?.["application/json"]?.schema;

/** The success answer's schema of an operation (the first 2xx with a JSON body). */
function successSchema(found, spec) {
  const status = Object.keys(found.responses ?? {}).find((code) => code.startsWith("2"));
  const schema = jsonSchema(found.responses?.[status]?.content);
  if (!schema) throw new Error(`${spec} answers no JSON body`);
  return schema;
}

/**
 * The generated file's text: `document` is the parsed OpenAPI document, `wireNames` the type
 * names ui/src/wire.ts exports.
 */
export function generate(document, wireNames) {
  const schemas = document.components?.schemas ?? {};
  const wire = new Set(wireNames);
  const found = new Set();
  const gets = [];
  const changes = { POST: [], PUT: [] };
  for (const spec of OFFICE_OPERATIONS) {
    const found_ = operation(document, spec);
    const answer = successSchema(found_, spec);
    collectRefs(answer, schemas, found);
    const request = jsonSchema(found_.requestBody?.content);
    if (request) collectRefs(request, schemas, found);
    const [method, path] = spec.split(" ");
    const entry = { path, answer: typeOf(answer, "  "), request: request ? typeOf(request, "  ") : "never" };
    if (method === "GET") gets.push(entry);
    else if (method in changes) changes[method].push(entry);
    else throw new Error(`unsupported method in ${spec}`);
  }
  const names = [...found].sort();
  const imported = names.filter((name) => wire.has(name));
  const declared = names.filter((name) => !wire.has(name));
  let out =
    "// Generated from sync-server/openapi.json by `npm --prefix ui run api-types`\n" +
    "// (ui/scripts/openapi-types.mjs). Do not edit by hand: src/office/api-types.test.ts fails\n" +
    "// when this file and the document disagree.\n\n";
  if (imported.length > 0) out += `import type { ${imported.join(", ")} } from "../wire";\n\n`;
  if (imported.length > 0) out += `export type { ${imported.join(", ")} };\n\n`;
  for (const name of declared) {
    const schema = schemas[name];
    out += `${comment(schema.description, "")}export type ${name} = ${typeOf(schema, "")};\n\n`;
  }
  out += "/** What each GET route the office pages call answers. */\nexport interface OfficeGets {\n";
  for (const { path, answer } of gets) out += `  ${JSON.stringify(path)}: ${answer};\n`;
  out += "}\n";
  for (const [method, name] of [
    ["POST", "OfficePosts"],
    ["PUT", "OfficePuts"],
  ]) {
    out += `\n/** Each ${method} route the office pages call: its body and its answer. */\nexport interface ${name} {\n`;
    for (const { path, answer, request } of changes[method]) {
      out += `  ${JSON.stringify(path)}: { request: ${request}; answer: ${answer} };\n`;
    }
    out += "}\n";
  }
  return out;
}

/** The type names a wire.ts text exports. */
export function exportedTypeNames(wireText) {
  return [...wireText.matchAll(/^export type (\w+)/gm)].map((match) => match[1]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const ui = new URL("../", import.meta.url);
  const document = JSON.parse(readFileSync(new URL("../sync-server/openapi.json", ui), "utf8"));
  const wireNames = exportedTypeNames(readFileSync(new URL("src/wire.ts", ui), "utf8"));
  const target = new URL("src/office/api-types.ts", ui);
  writeFileSync(target, generate(document, wireNames));
  console.log(`wrote ${fileURLToPath(target)}`);
}
