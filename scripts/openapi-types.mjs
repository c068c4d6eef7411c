/**
 * TypeScript types of the OpenAPI document (openapi-typescript), shared by
 * scripts/openapi.mjs and the test that keeps openapi/openapi.d.ts current.
 */
import openapiTS, { astToString } from 'openapi-typescript';

const HEADER = '/* Generated from openapi/openapi.json by scripts/openapi.mjs (openapi-typescript). Do not edit. */\n';

export async function renderOpenApiTypes(document) {
  // defaultNonNullable: false — a field with a default is optional in a request (the server fills it in).
  const ast = await openapiTS(structuredClone(document), { alphabetize: false, exportType: false, defaultNonNullable: false });
  return HEADER + astToString(ast);
}
