/**
 * The check a dedup rule passes before the hub starts: the configuration only knows that a key
 * is a JSON Pointer; whether it can ever hold a value is a question for the event type's
 * schemas, which live in the schema registry. A rule that cannot fire (an unknown type, a key
 * field no event of the type has, a key on personal data tokenized with random tokens) would
 * otherwise load silently and never catch a duplicate, or, keyed on a display mask, take
 * different facts for one.
 */
import { NexusError } from '../../model/errors.js';
import { INBOUND_PERSONAL_DATA } from '../../model/events.js';
import { EventEnvelope } from '../../model/schemas/event.js';
import { fieldClassOfPii } from '../../model/tokenized.js';
import type { DedupRule } from '../../platform/config.js';

/** One registered version of an event type's data schema, with what its `$ref`s may name. */
export interface DataSchemaVersion {
  version: number;
  schema: unknown;
  /** Registry references: the name a `$ref` uses -> the referenced schema. */
  references?: ReadonlyMap<string, unknown>;
}

export interface RuleCheckDeps {
  /**
   * Every live registered version of the type's data schema (the registry subject named like
   * the type, which is what ingest validates events against); empty for an unknown type.
   */
  dataSchemas: (eventType: string) => Promise<readonly DataSchemaVersion[]>;
  /** The token kind configured per field class (`tokenization.kinds`). */
  tokenKinds: Readonly<Record<string, string>>;
  /**
   * Whether the hub tokenizes this type's personal data at the edge. Default: the canonical
   * types with personal data (model/events.ts INBOUND_PERSONAL_DATA); other types' data is
   * published as sent, so an `x-pii` mark there says nothing about the values a key reads.
   */
  tokenizes?: (eventType: string) => boolean;
}

/** Why a rule was refused; stable, in the error's `reason` extension. */
export type RuleRefusal =
  | 'DEDUP_UNKNOWN_EVENT_TYPE'
  | 'DEDUP_KEY_UNKNOWN_FIELD'
  | 'DEDUP_KEY_RANDOM_TOKEN'
  | 'DEDUP_KEY_MASKED';

type Obj = { [keyword: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

const unescapeToken = (token: string) => token.replace(/~1/g, '/').replace(/~0/g, '~');
const escapeToken = (token: string) => token.replace(/~/g, '~0').replace(/\//g, '~1');

/** A schema node and the document its local `$ref`s resolve against. */
interface Node {
  schema: Obj;
  doc: unknown;
}

/**
 * A data schema with its registry references, for walking: `$ref`s to local pointers, to
 * anchors, to `$id`s inside the document and to registry reference names resolve; anything
 * else (a URL outside) does not, and what lies behind it counts as undeclared.
 */
class SchemaWalker {
  private readonly ids = new Map<string, unknown>();
  private readonly anchors = new Map<string, unknown>();

  constructor(
    private readonly root: unknown,
    private readonly references: ReadonlyMap<string, unknown> = new Map(),
  ) {
    this.index(root, 0);
    for (const referenced of references.values()) this.index(referenced, 0);
  }

  private index(schema: unknown, depth: number): void {
    if (depth > 64) return;
    if (Array.isArray(schema)) {
      for (const item of schema) this.index(item, depth + 1);
      return;
    }
    if (!isObj(schema)) return;
    if (typeof schema.$id === 'string') this.ids.set(schema.$id, schema);
    if (typeof schema.$anchor === 'string') this.anchors.set(schema.$anchor, schema);
    for (const [key, value] of Object.entries(schema)) {
      if (key !== 'enum' && key !== 'const' && key !== 'default' && key !== 'examples')
        this.index(value, depth + 1);
    }
  }

  get start(): Node[] {
    return isObj(this.root) ? this.expand({ schema: this.root, doc: this.root }) : [];
  }

  private resolve(ref: string, doc: unknown): Node | undefined {
    const hash = ref.indexOf('#');
    const location = hash < 0 ? ref : ref.slice(0, hash);
    const fragment = hash < 0 ? '' : ref.slice(hash + 1);
    let target: unknown = doc;
    if (location !== '') {
      target = this.references.get(location) ?? this.ids.get(location);
      if (target === undefined) {
        // A relative $ref to a sibling `$id` (`other.json` against `https://x/y/this.json`).
        const base = isObj(this.root) && typeof this.root.$id === 'string' ? this.root.$id : '';
        try {
          target = this.ids.get(new URL(location, base).href);
        } catch {
          target = undefined;
        }
      }
    }
    if (!isObj(target)) return undefined;
    if (fragment === '') return { schema: target, doc: target };
    if (!fragment.startsWith('/')) {
      const anchored = this.anchors.get(fragment);
      return isObj(anchored) ? { schema: anchored, doc: target } : undefined;
    }
    let node: unknown = target;
    for (const token of fragment.slice(1).split('/')) {
      let key = token;
      try {
        key = decodeURIComponent(token);
      } catch {
        // Not percent-encoded: as written.
      }
      key = unescapeToken(key);
      node = Array.isArray(node) ? node[Number(key)] : isObj(node) ? node[key] : undefined;
    }
    return isObj(node) ? { schema: node, doc: target } : undefined;
  }

  /**
   * The node and every node that may apply at the same place: what its `$ref` names, its
   * `allOf`, `anyOf` and `oneOf` branches, `then` / `else`, dependent schemas.
   */
  expand(node: Node, seen = new Set<Obj>()): Node[] {
    if (seen.has(node.schema)) return [];
    seen.add(node.schema);
    const out: Node[] = [node];
    const { schema, doc } = node;
    for (const key of ['$ref', '$dynamicRef'] as const) {
      const ref = schema[key];
      if (typeof ref !== 'string') continue;
      const target = this.resolve(ref, doc);
      if (target) out.push(...this.expand(target, seen));
    }
    for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
      const branches = schema[key];
      if (!Array.isArray(branches)) continue;
      for (const branch of branches)
        if (isObj(branch)) out.push(...this.expand({ schema: branch, doc }, seen));
    }
    for (const key of ['then', 'else'] as const) {
      if (isObj(schema[key])) out.push(...this.expand({ schema: schema[key], doc }, seen));
    }
    const dependent = schema.dependentSchemas;
    if (isObj(dependent)) {
      for (const branch of Object.values(dependent))
        if (isObj(branch)) out.push(...this.expand({ schema: branch, doc }, seen));
    }
    return out;
  }

  /**
   * Where one reference token leads from these nodes: a declared property (by name, by a
   * `patternProperties` pattern, or any name where `additionalProperties` is a schema: a map),
   * or an array item by index (`prefixItems`, then `items`). An open object's undeclared
   * properties do not count: nothing says an event will ever carry them.
   */
  step(nodes: readonly Node[], token: string): Node[] {
    const next: Node[] = [];
    const seen = new Set<Obj>();
    const add = (schema: unknown, doc: unknown) => {
      if (isObj(schema)) next.push(...this.expand({ schema, doc }, seen));
    };
    for (const { schema, doc } of nodes) {
      let named = false;
      if (isObj(schema.properties) && Object.hasOwn(schema.properties, token)) {
        add(schema.properties[token], doc);
        named = true;
      }
      if (isObj(schema.patternProperties)) {
        for (const [pattern, sub] of Object.entries(schema.patternProperties)) {
          let matches = false;
          try {
            matches = new RegExp(pattern, 'u').test(token);
          } catch {
            matches = false;
          }
          if (matches) {
            add(sub, doc);
            named = true;
          }
        }
      }
      if (!named && isObj(schema.additionalProperties)) add(schema.additionalProperties, doc);
      if (ARRAY_INDEX.test(token)) {
        const index = Number(token);
        const prefix = Array.isArray(schema.prefixItems)
          ? schema.prefixItems
          : Array.isArray(schema.items)
            ? schema.items
            : null;
        if (prefix && index < prefix.length) add(prefix[index], doc);
        else if (prefix)
          add(Array.isArray(schema.items) ? schema.additionalItems : schema.items, doc);
        else add(schema.items, doc);
      }
    }
    return next;
  }

  /** Every `x-pii` kind in these nodes and everything under them. */
  personalKinds(
    nodes: readonly Node[],
    into = new Set<string>(),
    seen = new Set<Obj>(),
  ): Set<string> {
    for (const node of nodes) {
      if (seen.has(node.schema)) continue;
      seen.add(node.schema);
      const { schema, doc } = node;
      if (typeof schema['x-pii'] === 'string') into.add(schema['x-pii']);
      const children: unknown[] = [];
      for (const key of ['properties', 'patternProperties', 'dependentSchemas'] as const) {
        if (isObj(schema[key])) children.push(...Object.values(schema[key]));
      }
      for (const key of ['prefixItems', 'items'] as const) {
        const value = schema[key];
        if (Array.isArray(value)) children.push(...(value as unknown[]));
        else children.push(value);
      }
      children.push(schema.additionalProperties, schema.additionalItems);
      const below = children.flatMap((child) =>
        isObj(child) ? this.expand({ schema: child, doc }) : [],
      );
      this.personalKinds(below, into, seen);
    }
    return into;
  }
}

/**
 * What a key pointer's tokens reach from a schema's root: the personal data kinds at, above or
 * below the place, or the first token that names nothing (with the pointer up to it).
 */
function reach(
  walker: SchemaWalker,
  tokens: readonly string[],
): { personal: Set<string> } | { missing: string; under: readonly string[] } {
  let nodes = walker.start;
  const personal = new Set<string>();
  const onTheWay = (at: readonly Node[]) => {
    for (const { schema } of at)
      if (typeof schema['x-pii'] === 'string') personal.add(schema['x-pii']);
  };
  onTheWay(nodes);
  for (const [i, token] of tokens.entries()) {
    nodes = walker.step(nodes, token);
    if (nodes.length === 0) return { missing: token, under: tokens.slice(0, i) };
    onTheWay(nodes);
  }
  walker.personalKinds(nodes, personal);
  return { personal };
}

const ENVELOPE = new SchemaWalker(EventEnvelope);

const refuse = (
  reason: RuleRefusal,
  rule: DedupRule,
  setting: string,
  message: string,
  pointer?: string,
): NexusError =>
  new NexusError('CONFIG_INVALID', `invalid configuration: ${setting}: ${message}`, {
    errors: [{ pointer: `/${setting.replace(/\./g, '/')}`, detail: message }],
    extensions: { reason, rule: rule.name, ...(pointer === undefined ? {} : { pointer }) },
  });

/**
 * Checks every rule against the schemas of its event type; the first rule that cannot work
 * refuses the start with CONFIG_INVALID and one line naming the rule, the pointer and why.
 *
 * - The type must be a registry subject (every canonical event type is one; types channel
 *   adapters registered are too, since ingest validates events against their subject).
 * - Each key must name a field of the CloudEvents envelope, or one in the type's data that at
 *   least one registered version declares: properties, array items by index, maps, through
 *   `$ref`, `allOf`, `anyOf`, `oneOf`. An event of a version without it is unkeyed, as before.
 * - A key must not reach personal data the hub tokenizes as `vault` (random: a new token every
 *   time, so it never repeats) or `mask` (display masks of different values look alike).
 *   Convergent and FF1 tokens are deterministic and fine.
 */
export async function checkDedupRules(
  rules: readonly DedupRule[],
  deps: RuleCheckDeps,
): Promise<void> {
  const tokenizes =
    deps.tokenizes ?? ((type: string) => Object.hasOwn(INBOUND_PERSONAL_DATA, type));
  for (const [i, rule] of rules.entries()) {
    const versions = await deps.dataSchemas(rule.eventType);
    if (versions.length === 0) {
      throw refuse(
        'DEDUP_UNKNOWN_EVENT_TYPE',
        rule,
        `dedup.rules.${i}.eventType`,
        `rule '${rule.name}' is for '${rule.eventType}', which is neither a canonical event type nor registered in the schema registry, so it would never apply (register the type's schema first)`,
      );
    }
    const walkers = versions.map((v) => new SchemaWalker(v.schema, v.references));
    for (const [j, pointer] of rule.key.entries()) {
      const setting = `dedup.rules.${i}.key.${j}`;
      const tokens = pointer.split('/').slice(1).map(unescapeToken);
      // Into the data: declared by any registered version is enough (events name their version,
      // and one of a version without the field is unkeyed); else the envelope's own fields.
      const inData = tokens[0] === 'data';
      const reached = inData
        ? walkers.map((walker) => reach(walker, tokens.slice(1)))
        : [reach(ENVELOPE, tokens)];
      const personal = new Set<string>();
      for (const r of reached)
        if ('personal' in r) for (const kind of r.personal) personal.add(kind);
      const latest = reached[reached.length - 1]!;
      if (!reached.some((r) => 'personal' in r) && 'missing' in latest) {
        const under = [...(inData ? ['data'] : []), ...latest.under];
        const place = `'${latest.missing}' under /${under.map(escapeToken).join('/')}`;
        const schema = inData
          ? `no registered version of the ${rule.eventType} data schema declares`
          : 'the CloudEvents envelope has no';
        throw refuse(
          'DEDUP_KEY_UNKNOWN_FIELD',
          rule,
          setting,
          `rule '${rule.name}' keys on '${pointer}', but ${schema} ${place}, so no event would ever carry the key`,
          pointer,
        );
      }
      if (!tokenizes(rule.eventType)) continue;
      for (const kind of personal) {
        const fieldClass = fieldClassOfPii(kind);
        const tokenKind = deps.tokenKinds[fieldClass];
        if (tokenKind === 'vault') {
          throw refuse(
            'DEDUP_KEY_RANDOM_TOKEN',
            rule,
            setting,
            `rule '${rule.name}' keys on '${pointer}', personal data (${fieldClass}) tokenized as vault (tokenization.kinds.${fieldClass}): random tokens never repeat, so the key would never match`,
            pointer,
          );
        }
        if (tokenKind === 'mask') {
          throw refuse(
            'DEDUP_KEY_MASKED',
            rule,
            setting,
            `rule '${rule.name}' keys on '${pointer}', personal data (${fieldClass}) kept as a display mask (tokenization.kinds.${fieldClass}): masks of different values look alike, so different facts would be taken for one`,
            pointer,
          );
        }
      }
    }
  }
}
