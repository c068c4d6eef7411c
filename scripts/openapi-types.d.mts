/** Types of scripts/openapi-types.mjs for the TypeScript tests. */
export declare function renderOpenApiTypes(document: unknown): Promise<string>;
