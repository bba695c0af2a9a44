// The knob schema of `ready.engine.knobs`, normalized for drawing controls.
//
//   number: {name, kind:"number", min, max, step?, default, unit?, label?}
//           (no kind but min/max: a number; "value" is an alias of "default")
//   choice: {name, kind:"choice", options:[str | {value, label}], default, label?}
//   toggle: {name, kind:"toggle", default: bool, label?}
//
// The server checks the schema when the engine answers; this is lenient
// anyway (a knob it cannot draw is skipped, never thrown on), since an older
// server may pass anything through.

/** Returns the drawable knobs, each with `kind`, `label` and `default` filled in. */
export function normalizeKnobs(knobs) {
  if (!Array.isArray(knobs)) return [];
  const out = [];
  for (const k of knobs) {
    if (!k || typeof k !== 'object' || typeof k.name !== 'string' || !k.name) continue;
    const label = typeof k.label === 'string' && k.label ? k.label : k.name;
    const kind = k.kind ?? (typeof k.min === 'number' && typeof k.max === 'number' ? 'number' : null);
    const def = k.default !== undefined ? k.default : k.value;
    if (kind === 'number') {
      const min = Number(k.min);
      const max = Number(k.max);
      if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) continue;
      const step = Number.isFinite(Number(k.step)) && Number(k.step) > 0 ? Number(k.step) : null;
      const d = Number.isFinite(Number(def)) ? Math.min(max, Math.max(min, Number(def))) : min;
      out.push({ name: k.name, kind, label, min, max, step, default: d, unit: typeof k.unit === 'string' ? k.unit : '' });
    } else if (kind === 'choice') {
      const options = (Array.isArray(k.options) ? k.options : [])
        .map((o) => (typeof o === 'string' ? { value: o, label: o } : o && typeof o.value === 'string' ? { value: o.value, label: String(o.label ?? o.value) } : null))
        .filter(Boolean);
      if (!options.length) continue;
      const d = options.some((o) => o.value === def) ? def : options[0].value;
      out.push({ name: k.name, kind, label, options, default: d });
    } else if (kind === 'toggle') {
      out.push({ name: k.name, kind, label, default: def === true });
    }
  }
  return out;
}
