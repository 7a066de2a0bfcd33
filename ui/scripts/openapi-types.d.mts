// Types of openapi-types.mjs, for the unit test that keeps src/office/api-types.ts current.
export const OFFICE_OPERATIONS: string[];
export function generate(document: unknown, wireNames: string[]): string;
export function exportedTypeNames(wireText: string): string[];
