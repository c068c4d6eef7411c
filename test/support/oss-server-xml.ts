/**
 * XML in and out of the OSS test server.
 *
 * Responses are rendered by hand from an ordered element list because OSS
 * documents a fixed element order and clients (ali-oss uses xml2js) are
 * sensitive to repeated elements; request bodies (CompleteMultipartUpload,
 * Delete, RestoreRequest) are parsed with fast-xml-parser.
 */
import { XMLParser } from 'fast-xml-parser';

import { OssError } from './oss-server-errors.js';

/** A value an element can hold: text, nested elements, or nothing (the element is omitted). */
export type XmlValue = string | number | boolean | readonly XmlElement[] | undefined;
/** One element: `[name, value]`. Arrays of these keep document order and allow repeats. */
export type XmlElement = readonly [name: string, value: XmlValue];

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => {
    switch (ch) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      default:
        return '&apos;';
    }
  });
}

function renderElement([name, value]: XmlElement): string {
  if (value === undefined) return '';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return `<${name}>${escapeXml(String(value))}</${name}>`;
  }
  return `<${name}>${value.map(renderElement).join('')}</${name}>`;
}

/** Renders a complete document with the declaration OSS always sends. */
export function renderXmlDocument(rootName: string, content: readonly XmlElement[] | string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${renderElement([rootName, content])}`;
}

/** A parsed element: text for leaves, an object for containers (repeated children become arrays). */
export type ParsedXml = string | { readonly [name: string]: ParsedXml | readonly ParsedXml[] };

const parser = new XMLParser({
  ignoreAttributes: true,
  // Keys and ETags must stay strings ("007" is not 7), and object keys may
  // legitimately start or end with spaces, so neither coerce nor trim.
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  processEntities: true,
  htmlEntities: false,
});

/**
 * Parses a request body, requiring the given root element.
 * Whitespace-only text between elements (pretty-printed bodies, like the one
 * ali-oss sends for CompleteMultipartUpload) is dropped as `#text` noise.
 */
export function parseXmlBody(body: Buffer, rootName: string): Record<string, ParsedXml | readonly ParsedXml[]> {
  let doc: unknown;
  try {
    doc = parser.parse(body.toString('utf8'), true);
  } catch (err) {
    throw new OssError('MalformedXML', `The XML you provided was not well-formed: ${(err as Error).message}`);
  }
  const root = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)[rootName] : undefined;
  if (root === '' || (typeof root === 'string' && root.trim() === '')) return {};
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw new OssError('MalformedXML', `The XML you provided was not well-formed: expected root <${rootName}>`);
  }
  return root as Record<string, ParsedXml | readonly ParsedXml[]>;
}

/** All children called `name`, whether the parser produced one value or an array. */
export function childList(node: ParsedXml | readonly ParsedXml[] | undefined): readonly ParsedXml[] {
  if (node === undefined) return [];
  return Array.isArray(node) ? (node as readonly ParsedXml[]) : [node as ParsedXml];
}

/** The text of a leaf child, or undefined when absent or not a leaf. */
export function childText(parent: ParsedXml | undefined, name: string): string | undefined {
  if (parent === undefined || typeof parent === 'string') return undefined;
  const child = parent[name];
  const first = childList(child)[0];
  if (first === undefined) return undefined;
  if (typeof first === 'string') return first;
  // `<Key></Key>` parses as an empty string; `<Key> </Key>` with trimValues
  // off as " "; anything else here is a container, which is not text.
  return undefined;
}
