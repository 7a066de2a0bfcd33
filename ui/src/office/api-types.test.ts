// api-types.ts is what ui/scripts/openapi-types.mjs makes of the server's committed OpenAPI
// document: this fails while it is stale (`npm --prefix ui run api-types` rewrites it).
import { describe, expect, it } from "vitest";
import { OFFICE_OPERATIONS, exportedTypeNames, generate } from "../../scripts/openapi-types.mjs";
import openapiText from "../../../sync-server/openapi.json?raw";
import wireText from "../wire.ts?raw";
import committed from "./api-types.ts?raw";

describe("the office's API types", () => {
  it("are current with sync-server/openapi.json", () => {
    const generated = generate(JSON.parse(openapiText), exportedTypeNames(wireText));
    expect(committed, "src/office/api-types.ts is stale: run `npm --prefix ui run api-types`").toBe(generated);
  });

  it("cover every route the pages call", () => {
    for (const spec of OFFICE_OPERATIONS) {
      const path = spec.split(" ")[1] ?? "";
      expect(committed).toContain(JSON.stringify(path));
    }
  });

  it("import what wire.ts declares instead of repeating it", () => {
    const document = {
      paths: {
        "/v1/branches": {
          get: {
            responses: {
              "200": { content: { "application/json": { schema: { $ref: "#/components/schemas/Page" } } } },
            },
          },
        },
      },
      components: {
        schemas: {
          Page: {
            type: "object",
            required: ["error", "count"],
            properties: {
              error: { $ref: "#/components/schemas/ErrorBody" },
              count: { type: "integer", format: "int64" },
              note: { type: "string", nullable: true, description: "Why." },
              kind: { anyOf: [{ $ref: "#/components/schemas/Kind" }, { enum: [null], nullable: true }] },
            },
          },
          Kind: { type: "string", enum: ["a", "b"] },
          ErrorBody: { type: "object", properties: { code: { type: "string" } } },
        },
      },
    };
    const operations = OFFICE_OPERATIONS.splice(0, OFFICE_OPERATIONS.length, "GET /v1/branches");
    try {
      const out = generate(document, ["ErrorBody"]);
      expect(out).toContain('import type { ErrorBody } from "../wire";');
      expect(out).not.toContain("export type ErrorBody =");
      expect(out).toContain("export type Kind = \"a\" | \"b\";");
      expect(out).toContain("  count: number;");
      expect(out).toContain("  note?: string | null;");
      expect(out).toContain("  kind?: Kind | null;");
      expect(out).toContain('"/v1/branches": Page;');
    } finally {
      OFFICE_OPERATIONS.splice(0, OFFICE_OPERATIONS.length, ...operations);
    }
  });
});
