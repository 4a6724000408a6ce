// renderHeatmapSvg: well-formed standalone SVG (an in-test tag-balance checker; xmllint and rsvg-convert too when
// installed), one cell rect per grid position coloured on viridis, escaping, unmeasured cells, degenerate grids,
// LayerSkip's 31×6 sweep within a sane size, highlight and reference marks, determinism.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderHeatmapSvg, viridisColour, type HeatmapCell, type HeatmapOptions } from '../lib/tasks/heatmap-svg.js';

const VIRIDIS_START = '#440154';
const VIRIDIS_MIDDLE = '#21918c';
const VIRIDIS_END = '#fde725';
const UNMEASURED_FILL = '#eeeeee';

interface Element { name: string; attributes: Record<string, string>; text: string }

/**
 * A strict little XML checker for what the renderer writes: one root, balanced tags, quoted unique attributes,
 * no stray '<' or '&' in text or attribute values. Returns every element with its attributes and direct text.
 */
function parseXml(xml: string): Element[] {
  const declaration = /^<\?xml version="1\.0" encoding="UTF-8"( standalone="no")?\?>\n/;
  assert.match(xml, declaration, 'starts with the XML declaration');
  const body = xml.replace(declaration, '');
  const checkText = (text: string, where: string) => {
    assert.ok(!text.includes('<'), `stray '<' in ${where}`);
    for (const match of text.matchAll(/&/g)) {
      assert.match(text.slice(match.index), /^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/, `bad entity in ${where}`);
    }
  };
  const elements: Element[] = [];
  const open: Element[] = [];
  let roots = 0;
  let position = 0;
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>/y;
  while (position < body.length) {
    const next = body.indexOf('<', position);
    const text = body.slice(position, next < 0 ? body.length : next);
    checkText(text, `text at ${position}`);
    if (open.length) open[open.length - 1].text += text;
    else assert.match(text, /^\s*$/, 'no text outside the root element');
    if (next < 0) break;
    tag.lastIndex = next;
    const match = tag.exec(body);
    assert.ok(match, `malformed tag at ${next}: ${body.slice(next, next + 60)}`);
    const [whole, closing, name, attributeText, selfClosing] = match;
    if (closing) {
      assert.ok(!attributeText && !selfClosing, `closing tag with attributes at ${next}`);
      const top = open.pop();
      assert.equal(top?.name, name, `</${name}> closes <${top?.name}>`);
    } else {
      const attributes: Record<string, string> = {};
      for (const [, key, value] of attributeText.matchAll(/([\w:.-]+)="([^"]*)"/g)) {
        assert.ok(!(key in attributes), `duplicate attribute ${key} on <${name}>`);
        checkText(value, `attribute ${key} of <${name}>`);
        attributes[key] = value;
      }
      const element = { name, attributes, text: '' };
      elements.push(element);
      if (!open.length) roots++;
      if (!selfClosing) open.push(element);
    }
    position = next + whole.length;
  }
  assert.equal(open.length, 0, `unclosed <${open[open.length - 1]?.name}>`);
  assert.equal(roots, 1, 'exactly one root element');
  return elements;
}

function unescapeXml(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

const cellRects = (elements: Element[]) => elements.filter((e) => e.name === 'rect' && e.attributes.class === 'cell');
const byClass = (elements: Element[], name: string, className: string) =>
  elements.filter((e) => e.name === name && e.attributes.class === className);
const numberAttribute = (element: Element, key: string) => Number(element.attributes[key]);

/** A plausible tokens/s landscape over LayerSkip's default sweep: E = 1..31, k = 1..6, a corner not yet measured. */
function layerSkipSweep(): HeatmapOptions {
  const xValues = Array.from({ length: 31 }, (_, i) => i + 1);
  const yValues = [1, 2, 3, 4, 5, 6];
  const cells: HeatmapCell[] = [];
  for (const exitLayer of xValues) {
    for (const numSpeculations of yValues) {
      if (exitLayer > 26 && numSpeculations > 4) {
        cells.push({ x: exitLayer, y: numSpeculations, value: null });
        continue;
      }
      const acceptance = Math.min(0.98, 0.25 + exitLayer / 34);
      const accepted = (1 - acceptance ** (numSpeculations + 1)) / (1 - acceptance);
      cells.push({ x: exitLayer, y: numSpeculations, value: (40 * accepted) / (1.2 + (numSpeculations * exitLayer) / 32) });
    }
  }
  return {
    title: 'Self-speculative sweep: Llama 3.2 1B LayerSkip',
    subtitle: 'greedy, 128 new tokens, 4 prompts',
    xLabel: 'exit layer E',
    yLabel: 'speculations k',
    valueLabel: 'tokens/s',
    xValues,
    yValues,
    cells,
    highlight: { x: 25, y: 6, caption: 'best: E = 25, k = 6' },
    reference: { value: 38.5, caption: 'autoregressive' },
  };
}

function hasCommand(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

describe('renderHeatmapSvg', function () {
  it('writes a well-formed standalone SVG 1.1 document', function () {
    const svg = renderHeatmapSvg(layerSkipSweep());
    const elements = parseXml(svg);
    const root = elements[0];
    assert.equal(root.name, 'svg');
    assert.equal(root.attributes.xmlns, 'http://www.w3.org/2000/svg');
    assert.equal(root.attributes.version, '1.1');
    assert.equal(root.attributes.viewBox, `0 0 ${root.attributes.width} ${root.attributes.height}`);
    assert.match(root.attributes['font-family'], /sans-serif$/);
    for (const forbidden of ['<script', '<image', '<style', 'style=', 'href="http', '<foreignObject', '@font-face']) {
      assert.ok(!svg.includes(forbidden), `no ${forbidden}`);
    }
    if (hasCommand('xmllint')) {
      const result = spawnSync('xmllint', ['--noout', '-'], { input: svg });
      assert.equal(result.status, 0, `xmllint: ${result.stderr}`);
    }
  });

  it('renders with rsvg-convert when it is installed', function () {
    if (!hasCommand('rsvg-convert')) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'heatmap-'));
    try {
      const svgPath = path.join(dir, 'sweep.svg');
      fs.writeFileSync(svgPath, renderHeatmapSvg(layerSkipSweep()));
      const result = spawnSync('rsvg-convert', [svgPath, '-o', path.join(dir, 'sweep.png')]);
      assert.equal(result.status, 0, `rsvg-convert: ${result.stderr}`);
      assert.ok(fs.statSync(path.join(dir, 'sweep.png')).size > 1000);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('draws one rect per grid position, coloured on viridis from min to max', function () {
    const options = layerSkipSweep();
    const rects = cellRects(parseXml(renderHeatmapSvg(options)));
    assert.equal(rects.length, 31 * 6);
    const values = options.cells.flatMap((cell) => (cell.value === null ? [] : [cell.value]));
    const low = Math.min(...values);
    const high = Math.max(...values);
    const fills = options.cells.map((cell) => (cell.value === null ? UNMEASURED_FILL : viridisColour((cell.value - low) / (high - low))));
    assert.deepEqual(rects.map((rect) => rect.attributes.fill).sort(), fills.sort());
    assert.equal(viridisColour(0), VIRIDIS_START);
    assert.equal(viridisColour(1), VIRIDIS_END);
    assert.ok(rects.some((rect) => rect.attributes.fill === VIRIDIS_START), 'min cell is the viridis start colour');
    assert.ok(rects.some((rect) => rect.attributes.fill === VIRIDIS_END), 'max cell is the viridis end colour');
  });

  it('picks white text on dark cells and black on light ones', function () {
    const svg = renderHeatmapSvg({ ...base(), xValues: [1, 2], yValues: [1], cells: [{ x: 1, y: 1, value: 0 }, { x: 2, y: 1, value: 10 }] });
    const labels = parseXml(svg).filter((e) => e.name === 'text' && e.attributes['text-anchor'] === 'middle' && (e.text === '0' || e.text === '10.0'));
    assert.deepEqual(labels.map((label) => [label.text, label.attributes.fill]), [['0', '#ffffff'], ['10.0', '#000000']]);
  });

  it('escapes text for XML', function () {
    const title = `Tokens <per> second & "acceptance" 'rate'`;
    const svg = renderHeatmapSvg({ ...base(), title, xLabel: 'E <&>', cells: [{ x: 1, y: 1, value: 1, label: 'a<b&c' }] });
    const elements = parseXml(svg);
    assert.ok(svg.includes('Tokens &lt;per&gt; second &amp; &quot;acceptance&quot; &apos;rate&apos;'));
    assert.ok(elements.some((e) => e.name === 'text' && unescapeXml(e.text) === title));
    assert.ok(elements.some((e) => e.name === 'text' && unescapeXml(e.text) === 'E <&>'));
    assert.ok(elements.some((e) => e.name === 'text' && unescapeXml(e.text) === 'a<b&c'));
    parseXml(renderHeatmapSvg({ ...base(), title: 'control\u0001chars\u001f and a lone \ud800 surrogate' }));
  });

  it('hatches unmeasured cells and labels them with a dash', function () {
    const options: HeatmapOptions = {
      ...base(),
      xValues: [1, 2, 3],
      yValues: [1, 2],
      cells: [{ x: 1, y: 1, value: 10 }, { x: 2, y: 1, value: null }, { x: 3, y: 2, value: 20 }],
    };
    const elements = parseXml(renderHeatmapSvg(options));
    const rects = cellRects(elements);
    assert.equal(rects.length, 6, 'positions without a cell are drawn too');
    assert.equal(rects.filter((rect) => rect.attributes.fill === UNMEASURED_FILL).length, 4);
    assert.equal(elements.filter((e) => e.name === 'rect' && /^url\(#.*hatch\)$/.test(e.attributes.fill ?? '')).length, 4, 'hatch overlays');
    assert.equal(elements.filter((e) => e.name === 'text' && e.text === '—').length, 4);
    const allUnmeasured = parseXml(renderHeatmapSvg({ ...options, cells: [] }));
    assert.equal(cellRects(allUnmeasured).filter((rect) => rect.attributes.fill === UNMEASURED_FILL).length, 6);
    assert.equal(byClass(allUnmeasured, 'text', 'colour-bar-tick').length, 0, 'no ticks before anything is measured');
  });

  it('renders a 1×1 grid at a readable size', function () {
    const svg = renderHeatmapSvg({ ...base(), highlight: { x: 1, y: 1 }, reference: { value: 5, caption: 'AR' } });
    const elements = parseXml(svg);
    const [rect] = cellRects(elements);
    assert.ok(numberAttribute(rect, 'width') >= 36 && numberAttribute(rect, 'height') >= 30);
    assert.equal(rect.attributes.fill, VIRIDIS_MIDDLE, 'a single value sits in the middle of the map');
    assert.ok(elements.some((e) => e.name === 'text' && e.text.startsWith('best: x 1, y 1: 42.0 tokens/s')));
    assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'));
  });

  it('colours a constant grid without dividing by zero', function () {
    for (const value of [0, 7, -3]) {
      const cells = [1, 2, 3].flatMap((x) => [1, 2].map((y) => ({ x, y, value })));
      const svg = renderHeatmapSvg({ ...base(), xValues: [1, 2, 3], yValues: [1, 2], cells });
      const elements = parseXml(svg);
      assert.ok(!svg.includes('NaN') && !svg.includes('Infinity'), `value ${value}`);
      assert.ok(cellRects(elements).every((rect) => rect.attributes.fill === VIRIDIS_MIDDLE));
      const ticks = byClass(elements, 'text', 'colour-bar-tick').length;
      assert.ok(ticks >= 4 && ticks <= 6, `${ticks} colour bar ticks`);
    }
  });

  it("fits LayerSkip's 31×6 sweep in a sane width with cells at least 36 px wide", function () {
    const elements = parseXml(renderHeatmapSvg(layerSkipSweep()));
    const width = Number(elements[0].attributes.width);
    const height = Number(elements[0].attributes.height);
    assert.ok(width <= 1600 && height <= 600, `${width}×${height}`);
    const rects = cellRects(elements);
    assert.ok(rects.every((rect) => numberAttribute(rect, 'width') >= 36));
    assert.ok(rects.every((rect) => numberAttribute(rect, 'x') >= 0 && numberAttribute(rect, 'x') + numberAttribute(rect, 'width') <= width));
    const big = parseXml(renderHeatmapSvg({ ...layerSkipSweep(), xValues: Array.from({ length: 32 }, (_, i) => i), yValues: Array.from({ length: 16 }, (_, i) => i + 1), cells: [], highlight: undefined }));
    assert.equal(cellRects(big).length, 32 * 16);
    assert.ok(Number(big[0].attributes.width) <= 1700 && Number(big[0].attributes.height) <= 800);
  });

  it('places 4–6 colour bar ticks for any value range', function () {
    const ranges = [[0, 1], [38.2, 38.9], [1, 1000], [-5, 5], [0.001, 0.0013], [12, 97], [999, 1001], [3, 4.5]];
    for (const [low, high] of ranges) {
      const svg = renderHeatmapSvg({ ...base(), xValues: [1, 2], cells: [{ x: 1, y: 1, value: low }, { x: 2, y: 1, value: high }] });
      const ticks = byClass(parseXml(svg), 'text', 'colour-bar-tick').map((tick) => tick.text);
      assert.ok(ticks.length >= 4 && ticks.length <= 6, `${low}..${high}: ${ticks}`);
      assert.equal(new Set(ticks).size, ticks.length, `${low}..${high}: distinct labels ${ticks}`);
    }
  });

  it('outlines the highlighted cell', function () {
    const elements = parseXml(renderHeatmapSvg(layerSkipSweep()));
    const [outline] = byClass(elements, 'rect', 'highlight');
    assert.ok(outline, 'highlight outline drawn');
    assert.ok(Number(outline.attributes['stroke-width']) >= 3);
    // the cell under the outline is the one labelled with E = 25, k = 6's value
    const under = cellRects(elements).find((rect) =>
      numberAttribute(rect, 'x') < numberAttribute(outline, 'x') && numberAttribute(outline, 'x') < numberAttribute(rect, 'x') + numberAttribute(rect, 'width') &&
      numberAttribute(rect, 'y') < numberAttribute(outline, 'y') && numberAttribute(outline, 'y') < numberAttribute(rect, 'y') + numberAttribute(rect, 'height'));
    assert.ok(under);
    const rects = cellRects(elements);
    const columnOf = (rect: Element) => [...new Set(rects.map((r) => numberAttribute(r, 'x')))].sort((a, b) => a - b).indexOf(numberAttribute(rect, 'x'));
    const rowFromTop = (rect: Element) => [...new Set(rects.map((r) => numberAttribute(r, 'y')))].sort((a, b) => a - b).indexOf(numberAttribute(rect, 'y'));
    assert.equal(columnOf(under), 24, 'E = 25 is the 25th column');
    assert.equal(rowFromTop(under), 0, 'k = 6 is the top row');
    assert.ok(elements.some((e) => e.name === 'text' && e.text === 'best: E = 25, k = 6'), 'caption in the legend');
    assert.throws(() => renderHeatmapSvg({ ...layerSkipSweep(), highlight: { x: 40, y: 1 } }), /highlight/);
  });

  it('marks the reference on the colour bar and flags cells below it', function () {
    const options = layerSkipSweep();
    const elements = parseXml(renderHeatmapSvg(options));
    const [reference] = byClass(elements, 'text', 'reference');
    assert.equal(reference.text, 'autoregressive 38.5');
    const below = options.cells.filter((cell) => cell.value !== null && cell.value < 38.5).length;
    assert.ok(below > 0);
    assert.equal(byClass(elements, 'path', 'below-reference').length, below);
    assert.ok(elements.some((e) => e.name === 'text' && e.text === 'below autoregressive (38.5 tokens/s)'));
    const offScale = parseXml(renderHeatmapSvg({ ...options, reference: { value: 1, caption: 'AR' } }));
    assert.equal(byClass(offScale, 'text', 'reference')[0].text, 'AR 1.00 (below scale)');
    assert.equal(byClass(offScale, 'path', 'below-reference').length, 0);
  });

  it('uses the format option for cells and the colour bar', function () {
    const format = (value: number) => `${Math.round(value)} t/s`;
    const elements = parseXml(renderHeatmapSvg({ ...base(), xValues: [1, 2], cells: [{ x: 1, y: 1, value: 10.4 }, { x: 2, y: 1, value: 20 }], format }));
    assert.ok(elements.some((e) => e.name === 'text' && e.text === '10 t/s'));
    assert.ok(byClass(elements, 'text', 'colour-bar-tick').every((tick) => tick.text.endsWith(' t/s')));
  });

  it('fits multi-line labels in the cell', function () {
    const elements = parseXml(renderHeatmapSvg({ ...base(), cells: [{ x: 1, y: 1, value: 52.1, label: '52.1\n87%\nE8' }] }));
    const [rect] = cellRects(elements);
    const lines = elements.filter((e) => e.name === 'text' && ['52.1', '87%', 'E8'].includes(e.text)).map((e) => numberAttribute(e, 'y'));
    assert.equal(lines.length, 3);
    assert.ok(lines.every((y) => y > numberAttribute(rect, 'y') + 8 && y < numberAttribute(rect, 'y') + numberAttribute(rect, 'height')));
  });

  it('is deterministic and writes numbers with at most 2 decimals', function () {
    const svg = renderHeatmapSvg(layerSkipSweep());
    assert.equal(renderHeatmapSvg(layerSkipSweep()), svg);
    for (const element of parseXml(svg)) {
      for (const [key, value] of Object.entries(element.attributes)) {
        if (['x', 'y', 'x1', 'x2', 'y1', 'y2', 'width', 'height', 'd', 'transform', 'viewBox', 'stroke-width', 'offset'].includes(key)) {
          assert.ok(!/\d\.\d{3,}/.test(value), `${element.name} ${key}="${value}"`);
        }
      }
    }
  });

  it('rejects cells off the grid, duplicates and non-finite values', function () {
    assert.throws(() => renderHeatmapSvg({ ...base(), cells: [{ x: 2, y: 1, value: 1 }] }), /cells\[0\] \(2, 1\) is not on/);
    assert.throws(() => renderHeatmapSvg({ ...base(), cells: [{ x: 1, y: 1, value: 1 }, { x: 1, y: 1, value: 2 }] }), /appears twice/);
    assert.throws(() => renderHeatmapSvg({ ...base(), cells: [{ x: 1, y: 1, value: NaN }] }), /cells\[0\]\.value/);
    assert.throws(() => renderHeatmapSvg({ ...base(), xValues: [] }), /xValues/);
  });
});

/** A 1×1 grid whose single cell is 42 tokens/s. */
function base(): HeatmapOptions {
  return { title: 't', xLabel: 'x', yLabel: 'y', valueLabel: 'tokens/s', xValues: [1], yValues: [1], cells: [{ x: 1, y: 1, value: 42 }] };
}
