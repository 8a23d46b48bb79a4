/**
 * Splits a YAML stream into documents, with limits: the stream's size, the number of
 * documents, nesting depth, and alias expansion (the "billion laughs" attack). Syntax errors
 * come back with line and column; each document can map a field path back to its line. Empty
 * documents (only comments, a trailing `---`) are skipped, as kubectl does. Pure.
 */
import { LineCounter, type Document, isNode, parseAllDocuments } from 'yaml';
import type { Segment } from './fields.js';

export const MAX_STREAM_BYTES = 1_048_576;
export const MAX_DOCUMENTS = 500;
export const MAX_DEPTH = 32;
/** Alias nodes a document may expand (yaml's own guard against exponential expansion). */
export const MAX_ALIAS_COUNT = 64;

export interface ParsedDocument {
  /** 1-based position of the document in its stream (counting empty ones, as a reader would). */
  number: number;
  /** The document's source, e.g. `api` or `file:deploy/mesh/canary.yaml`. */
  source: string;
  /** Line where the document starts. */
  line: number;
  /** The document as plain data (JSON-compatible). */
  value: unknown;
  /** Line and column of a field (or of its nearest present parent). */
  locate(at: readonly Segment[]): { line: number; col: number } | undefined;
}

export interface StreamError {
  /** `document 2` (1-based), or `stream`. */
  where: string;
  source: string;
  line?: number;
  col?: number;
  message: string;
}

export type ParseResult = { ok: true; documents: ParsedDocument[] } | { ok: false; errors: StreamError[]; documents: ParsedDocument[] };

function depthOf(v: unknown, limit: number, depth = 0): number {
  if (depth > limit) return depth;
  if (typeof v !== 'object' || v === null) return depth;
  let max = depth;
  for (const child of Array.isArray(v) ? v : Object.values(v)) {
    max = Math.max(max, depthOf(child, limit, depth + 1));
    if (max > limit) break;
  }
  return max;
}

function firstLine(message: string): string {
  return message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? message;
}

/**
 * Parses a YAML stream. Documents that parse are returned even when others fail, so the caller
 * can report them by name; the stream as a whole is `ok` only when every document is.
 */
export function parseStream(text: string, source: string, limits: { maxBytes?: number; maxDocuments?: number } = {}): ParseResult {
  const maxBytes = limits.maxBytes ?? MAX_STREAM_BYTES;
  const maxDocuments = limits.maxDocuments ?? MAX_DOCUMENTS;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes)
    return { ok: false, documents: [], errors: [{ where: 'stream', source, message: `the YAML stream is ${bytes} bytes; the limit is ${maxBytes}` }] };
  const lineCounter = new LineCounter();
  const parsed = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: true, merge: false, strict: true, stringKeys: true });
  const docs: Document.Parsed[] = Array.isArray(parsed) ? parsed : [];
  const errors: StreamError[] = [];
  const documents: ParsedDocument[] = [];
  if (docs.length > maxDocuments) {
    return {
      ok: false,
      documents: [],
      errors: [{ where: 'stream', source, message: `the stream has ${docs.length} documents; the limit is ${maxDocuments}` }],
    };
  }
  docs.forEach((doc, i) => {
    const number = i + 1;
    const where = `document ${number}`;
    const start = lineCounter.linePos(doc.range[0]);
    const problems = [...doc.errors, ...doc.warnings];
    for (const e of problems) {
      const pos = e.linePos?.[0];
      errors.push({ where, source, line: pos?.line, col: pos?.col, message: firstLine(e.message) });
    }
    if (doc.contents === null) return; // an empty document
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      errors.push({ where, source, line: start.line, col: start.col, message: firstLine((err as Error).message) });
      return;
    }
    if (value === null || value === undefined) return;
    if (depthOf(value, MAX_DEPTH) > MAX_DEPTH) {
      errors.push({ where, source, line: start.line, col: start.col, message: `the document is nested deeper than ${MAX_DEPTH} levels` });
      return;
    }
    const locate = (at: readonly Segment[]) => {
      const path = at.map((s) => (typeof s === 'object' ? s.key : s));
      for (let n = path.length; n >= 0; n--) {
        const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
        if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]);
      }
      return undefined;
    };
    documents.push({ number, source, line: start.line, value, locate });
  });
  return errors.length === 0 ? { ok: true, documents } : { ok: false, errors, documents };
}
