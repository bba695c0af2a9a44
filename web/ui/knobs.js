// The knob panel, drawn from `ready.engine.knobs` (normalized by the client
// package): a slider for a number (min/max/step, unit, label), a select for
// a choice, a switch for a toggle. Changes go out as `params`, throttled
// while a slider is dragged.

import { normalizeKnobs } from '../sdk/index.js';

const PARAMS_EVERY_MS = 50;

const idFor = (name) => `knob-${String(name).replace(/[^a-z0-9_-]/gi, '_')}`;

/**
 * Creates the panel in `root`. `send(name, value)` is called on changes.
 * Returns {render(knobs), setEnabled(on)}.
 */
export function knobPanel(root, send) {
  let names = null;

  function render(raw) {
    const knobs = normalizeKnobs(raw);
    const sameSet = names && names.join('\n') === knobs.map((k) => `${k.kind}:${k.name}`).join('\n');
    if (sameSet) {
      // Same knobs (a resume): follow the engine's values, except the one in hand.
      for (const k of knobs) {
        const el = root.querySelector(`#${idFor(k.name)}`);
        if (el && document.activeElement !== el) setValue(el, k, k.default);
      }
      return;
    }
    names = knobs.map((k) => `${k.kind}:${k.name}`);
    root.textContent = '';
    if (!knobs.length) {
      const p = document.createElement('p');
      p.className = 'muted';
      p.textContent = 'This engine has no knobs.';
      root.append(p);
      return;
    }
    for (const k of knobs) root.append(row(k));
  }

  function row(k) {
    const div = document.createElement('div');
    div.className = `knob knob-${k.kind}`;
    const label = document.createElement('label');
    label.htmlFor = idFor(k.name);
    label.textContent = k.label;
    label.title = k.name;
    const out = document.createElement('output');
    out.htmlFor = idFor(k.name);
    const control = k.kind === 'number' ? slider(k) : k.kind === 'choice' ? select(k) : toggle(k);
    control.id = idFor(k.name);
    control.dataset.name = k.name;
    control.dataset.kind = k.kind;
    div.append(label, control, out);
    setValue(control, k, k.default, out);
    return div;
  }

  function slider(k) {
    const input = document.createElement('input');
    input.type = 'range';
    input.min = String(k.min);
    input.max = String(k.max);
    input.step = k.step == null ? 'any' : String(k.step);
    let timer = 0;
    let lastSent = 0;
    const push = () => {
      timer = 0;
      lastSent = performance.now();
      send(k.name, numberOf(input, k));
    };
    input.addEventListener('input', () => {
      setValue(input, k, numberOf(input, k));
      const wait = PARAMS_EVERY_MS - (performance.now() - lastSent);
      if (wait <= 0) push();
      else if (!timer) timer = setTimeout(push, wait);
    });
    input.addEventListener('change', () => {
      clearTimeout(timer);
      push();
    });
    return input;
  }

  function select(k) {
    const el = document.createElement('select');
    for (const o of k.options) {
      const opt = document.createElement('option');
      opt.value = o.value;
      opt.textContent = o.label;
      el.append(opt);
    }
    el.addEventListener('change', () => {
      setValue(el, k, el.value);
      send(k.name, el.value);
    });
    return el;
  }

  function toggle(k) {
    const el = document.createElement('input');
    el.type = 'checkbox';
    el.className = 'switch';
    el.setAttribute('role', 'switch');
    el.addEventListener('change', () => {
      setValue(el, k, el.checked);
      send(k.name, el.checked);
    });
    return el;
  }

  function setEnabled(on) {
    for (const el of root.querySelectorAll('input, select')) el.disabled = !on;
  }

  return { render, setEnabled };
}

function numberOf(input, k) {
  const v = Number(input.value);
  return k.step && Number.isInteger(k.step) ? Math.round(v) : Math.round(v * 1e6) / 1e6;
}

function decimals(k) {
  if (!k.step) return 2;
  const s = String(k.step);
  return s.includes('.') ? Math.min(4, s.split('.')[1].length) : 0;
}

function setValue(el, k, value, out = el.parentElement && el.parentElement.querySelector('output')) {
  if (k.kind === 'number') {
    el.value = String(value);
    const p = k.max > k.min ? ((Number(el.value) - k.min) / (k.max - k.min)) * 100 : 0;
    el.style.setProperty('--fill', `${p}%`);
    if (out) out.textContent = `${Number(value).toFixed(decimals(k))}${k.unit ? ` ${k.unit}` : ''}`;
  } else if (k.kind === 'choice') {
    el.value = String(value);
    if (out) out.textContent = '';
  } else {
    el.checked = value === true;
    if (out) out.textContent = el.checked ? 'on' : 'off';
  }
}
