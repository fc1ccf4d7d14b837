// The flow JSON Schema (GET /api/schemas/flow) is the single source of the palette, of each
// node type's ports (x-ports) and of the parameter forms.
import { api } from "../api.js";

let cached = null;

export async function loadSchema() {
  if (!cached) cached = await api("GET", "/api/schemas/flow");
  return cached;
}

export function resolve(schema, node) {
  let n = node;
  while (n && n.$ref) n = schema.$defs[n.$ref.split("/").pop()];
  return n || {};
}

/** {type: {def, ports}} for every node type the schema's discriminator names. */
export function nodeTypes(schema) {
  const mapping = schema.properties.nodes.items.discriminator.mapping;
  const out = {};
  for (const [type, ref] of Object.entries(mapping)) {
    const def = resolve(schema, { $ref: ref });
    out[type] = { type, def, ports: def["x-ports"], params: resolve(schema, def.properties.params) };
  }
  return out;
}

function valuesAt(params, source) {
  if (source.includes("[].")) {
    const [list, key] = source.split("[].");
    return (Array.isArray(params[list]) ? params[list] : []).map((item) => item && item[key]);
  }
  if (source.endsWith("{}=")) return Object.values(params[source.slice(0, -3)] || {});
  if (source.endsWith("{}")) return Object.keys(params[source.slice(0, -2)] || {});
  return [params[source]];
}

/** The output ports of a node spec: fixed, then dynamic (from x-ports.sources, the same path
 * language flows/nodes declare; tests/unit/test_flow_schema_ports.py checks it), then the common
 * ports that apply (error always; over_budget with a budget; max_visits with a limit) or are
 * already connected. Each is {name, common}. */
export function outputPorts(typeInfo, spec, connected = []) {
  const x = typeInfo.ports;
  const params = spec.params || {};
  const names = [...x.fixed];
  for (const src of x.sources) {
    let found = valuesAt(params, src);
    if (src === "else_port" && (found[0] === undefined || found[0] === null)) {
      found = [typeInfo.params.properties?.else_port?.default];
    }
    for (const p of found) if (typeof p === "string" && p && !names.includes(p)) names.push(p);
  }
  const out = names.map((name) => ({ name, common: false }));
  const wanted = { error: true, over_budget: spec.budget_ms != null, max_visits: spec.max_visits != null };
  for (const name of x.common) {
    if ((wanted[name] || connected.includes(name)) && !names.includes(name)) out.push({ name, common: true });
  }
  return out;
}

/** A fresh spec for a node dropped from the palette: required params get their simplest value. */
export function newSpec(schema, typeInfo, id) {
  const spec = { id, type: typeInfo.type };
  const params = defaultFor(schema, typeInfo.params, true);
  if (params && Object.keys(params).length) spec.params = params;
  return spec;
}

function defaultFor(schema, node, required) {
  const n = resolve(schema, node);
  if (n.default !== undefined) return structuredClone(n.default);
  if (!required) return undefined;
  if (n.anyOf) return defaultFor(schema, n.anyOf.find((a) => a.type !== "null"), true);
  if (n.const !== undefined) return n.const;
  if (n.enum) return n.enum[0];
  switch (n.type) {
    case "object": {
      const out = {};
      for (const k of n.required || []) {
        const v = defaultFor(schema, n.properties[k], true);
        if (v !== undefined) out[k] = v;
      }
      return out;
    }
    case "array": return [];
    case "string": return "";
    case "integer": case "number": return n.minimum ?? (n.exclusiveMinimum !== undefined ? n.exclusiveMinimum + 1 : 0);
    case "boolean": return false;
    default: return undefined;
  }
}
