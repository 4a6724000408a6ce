// A self-contained SVG 1.1 heatmap for `layerskip sweep`: one cell per (x, y) setting of a grid (exit layer on x,
// number of speculations on y), coloured by a measured value on the viridis map, with a vertical colour bar.
// No dependencies, no scripts, no CSS, no external fonts: presentation attributes and a font-family list only, so
// the same bytes render in browsers, GitHub's image view, rsvg-convert and ImageMagick.
//
// Encoding choices:
// - colour: viridis (11 anchors, linear interpolation in sRGB) over min..max of the measured cells; a constant grid
//   is centred on the map (the middle colour) instead of dividing by zero. Cell text is white or black, whichever
//   contrasts more (WCAG luminance).
// - unmeasured cells (value null, or a grid position with no cell): light grey with a diagonal hatch and "—".
// - reference (e.g. autoregressive tokens/s): a black-on-white line across the colour bar with its caption to the
//   right; cells measured below it carry a small solid "▼" triangle (drawn, not a glyph) in their top-left corner,
//   explained by a legend line under the subtitle.
// - highlight (the best cell): thick black outline with a thin white inner line, so it shows on dark and light cells;
//   its caption sits in the legend under the subtitle.
// Elements tests look for carry a class: cell, highlight, below-reference, colour-bar-tick, reference.
// Layout is derived from the text it must hold: a cell is at least 36 px wide and wide enough for its label and x
// tick; the grid is at least 160 px each way so the colour bar (as tall as the grid) fits 4–6 ticks. Every number
// written is rounded to at most 2 decimals and nothing depends on time or randomness: same input, same bytes.

export interface HeatmapCell {
  x: number;
  y: number;
  /** Measured value; null = not measured yet. */
  value: number | null;
  /** Text in the cell (default: the value formatted); '\n' separates lines. */
  label?: string;
}

export interface HeatmapOptions {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  /** Colour bar caption, e.g. "tokens/s". */
  valueLabel: string;
  /** Axis ticks in order: x left→right. */
  xValues: number[];
  /** Axis ticks in order: y bottom→top. */
  yValues: number[];
  cells: HeatmapCell[];
  /** The best cell: thick outline, caption in the legend under the subtitle. */
  highlight?: { x: number; y: number; caption?: string };
  /** E.g. autoregressive tokens/s: marked on the colour bar; cells below it are flagged. */
  reference?: { value: number; caption: string };
  /** Cell and colour-bar number format (default: 3 significant digits in cells, the tick step's decimals on the bar). */
  format?: (value: number) => string;
}

/** matplotlib's viridis sampled at 0, 0.1, …, 1. */
const VIRIDIS_ANCHORS = [
  '#440154', '#482475', '#414487', '#355f8d', '#2a788e', '#21918c',
  '#22a884', '#44bf70', '#7ad151', '#bddf26', '#fde725',
];
const FONT_FAMILY = 'DejaVu Sans, Helvetica, Arial, sans-serif';
const MARGIN = 16;
const TITLE_FONT = 16;
const TEXT_FONT = 12;
const CELL_FONT = 11;
const TICK_FONT = 11;
const MIN_CELL_WIDTH = 36;
const MIN_CELL_HEIGHT = 30;
const MIN_GRID_SIDE = 160;
const COLOUR_BAR_WIDTH = 16;
const UNMEASURED_FILL = '#eeeeee';
const UNMEASURED_TEXT = '#666666';
const MUTED_TEXT = '#444444';
const HATCH_ID = 'heatmap-unmeasured-hatch';
const GRADIENT_ID = 'heatmap-viridis';

/** Viridis colour at t in [0, 1] (clamped), as #rrggbb. */
export function viridisColour(t: number): string {
  const position = Math.min(1, Math.max(0, t)) * (VIRIDIS_ANCHORS.length - 1);
  const lower = Math.min(Math.floor(position), VIRIDIS_ANCHORS.length - 2);
  const fraction = position - lower;
  const from = hexToRgb(VIRIDIS_ANCHORS[lower]);
  const to = hexToRgb(VIRIDIS_ANCHORS[lower + 1]);
  const mixed = from.map((channel, i) => Math.round(channel + (to[i] - channel) * fraction));
  return `#${mixed.map((channel) => channel.toString(16).padStart(2, '0')).join('')}`;
}

function hexToRgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((offset) => parseInt(hex.slice(offset, offset + 2), 16)) as [number, number, number];
}

/** White or black, whichever has the higher WCAG contrast ratio against the background. */
function textColourOn(background: string): string {
  const [r, g, b] = hexToRgb(background).map((channel) => {
    const c = channel / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return 1.05 / (luminance + 0.05) > (luminance + 0.05) / 0.05 ? '#ffffff' : '#000000';
}

/** 3 significant digits without exponent for 1e-4 ≤ |v| < 1e6: 52.1, 0.873, 1230. */
function formatSignificant(value: number): string {
  if (value === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  if (magnitude < -4 || magnitude >= 6) return value.toPrecision(3);
  const decimals = Math.max(0, 2 - magnitude);
  const scale = 10 ** (magnitude - 2);
  return (Math.round(value / scale) * scale).toFixed(decimals);
}

/** An axis value as written by a person: 8, 0.5, not 0.30000000000000004. */
function formatAxisValue(value: number): string {
  return String(parseFloat(value.toPrecision(6)));
}

/** A coordinate or size for the SVG: at most 2 decimals, no "-0". */
function num(value: number): string {
  const rounded = Math.round(value * 100) / 100;
  return String(rounded === 0 ? 0 : rounded);
}

/** Text safe for XML content and attribute values; characters XML 1.0 forbids are dropped. */
function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A generous width estimate for DejaVu Sans (the widest of the font list), so layout never overlaps. */
function textWidth(text: string, fontSize: number, bold = false): number {
  return [...text].length * fontSize * (bold ? 0.7 : 0.64);
}

interface ColourBarTick { value: number; label: string }

/** 4–6 ticks on round numbers (steps 1, 2, 2.5, 5 × 10^n) inside [low, high]; evenly spaced if none fit. */
function colourBarTicks(low: number, high: number, format?: (value: number) => string): ColourBarTick[] {
  const range = high - low;
  let best: { step: number; decimals: number; values: number[] } | null = null;
  for (let exponent = Math.floor(Math.log10(range)) + 1; exponent >= Math.floor(Math.log10(range)) - 2; exponent--) {
    for (const mantissa of [5, 2.5, 2, 1]) {
      const step = mantissa * 10 ** exponent;
      const values: number[] = [];
      for (let k = Math.ceil(low / step - 1e-9); k * step <= high + step * 1e-9; k++) values.push(parseFloat((k * step).toPrecision(12)));
      if (values.length < 4 || values.length > 6) continue;
      if (!best || Math.abs(values.length - 5) < Math.abs(best.values.length - 5)) {
        best = { step, decimals: Math.max(0, mantissa === 2.5 ? 1 - exponent : -exponent), values };
      }
    }
  }
  if (!best) {
    const values = [0, 1, 2, 3, 4].map((i) => low + (range * i) / 4);
    return values.map((value) => ({ value, label: (format ?? formatSignificant)(value) }));
  }
  const decimals = best.decimals;
  return best.values.map((value) => ({ value, label: format ? format(value) : value.toFixed(decimals) }));
}

interface GridCell {
  column: number; // index into xValues
  row: number; // index into yValues (0 = bottom)
  value: number | null;
  lines: string[];
}

function validate(options: HeatmapOptions): void {
  for (const name of ['title', 'xLabel', 'yLabel', 'valueLabel'] as const) {
    if (typeof options[name] !== 'string') throw new TypeError(`renderHeatmapSvg: options.${name} must be a string`);
  }
  for (const name of ['xValues', 'yValues'] as const) {
    const values = options[name];
    if (!Array.isArray(values) || values.length === 0) throw new TypeError(`renderHeatmapSvg: options.${name} must be a non-empty array`);
    if (!values.every(Number.isFinite)) throw new TypeError(`renderHeatmapSvg: options.${name} must hold finite numbers`);
    if (new Set(values).size !== values.length) throw new Error(`renderHeatmapSvg: options.${name} has duplicate values`);
  }
  if (!Array.isArray(options.cells)) throw new TypeError('renderHeatmapSvg: options.cells must be an array');
  if (options.reference && !Number.isFinite(options.reference.value)) {
    throw new TypeError('renderHeatmapSvg: options.reference.value must be a finite number');
  }
}

/** Every grid position, row-major from the top row; positions with no cell are unmeasured. */
function buildGrid(options: HeatmapOptions, format: (value: number) => string): GridCell[] {
  const { xValues, yValues } = options;
  const grid: GridCell[] = [];
  for (let row = yValues.length - 1; row >= 0; row--) {
    for (let column = 0; column < xValues.length; column++) grid.push({ column, row, value: null, lines: ['—'] });
  }
  const seen = new Set<GridCell>();
  options.cells.forEach((cell, index) => {
    const column = xValues.indexOf(cell.x);
    const row = yValues.indexOf(cell.y);
    if (column < 0 || row < 0) throw new Error(`renderHeatmapSvg: cells[${index}] (${cell.x}, ${cell.y}) is not on the xValues × yValues grid`);
    if (cell.value !== null && !Number.isFinite(cell.value)) throw new TypeError(`renderHeatmapSvg: cells[${index}].value must be a finite number or null`);
    const target = grid[(yValues.length - 1 - row) * xValues.length + column];
    if (seen.has(target)) throw new Error(`renderHeatmapSvg: cells[${index}] (${cell.x}, ${cell.y}) appears twice`);
    seen.add(target);
    target.value = cell.value;
    if (cell.label !== undefined) target.lines = cell.label.split('\n');
    else if (cell.value !== null) target.lines = [format(cell.value)];
  });
  return grid;
}

interface Layout {
  width: number;
  height: number;
  gridLeft: number;
  gridTop: number;
  cellWidth: number;
  cellHeight: number;
  gridWidth: number;
  gridHeight: number;
  colourBarLeft: number;
  headerLines: number[]; // baselines of title, subtitle, legend lines
}

interface LegendEntry { kind: 'highlight' | 'below-reference'; text: string }

function computeLayout(options: HeatmapOptions, grid: GridCell[], legend: LegendEntry[], ticks: ColourBarTick[], referenceCaption: string): Layout {
  const columns = options.xValues.length;
  const rows = options.yValues.length;
  const widestLabel = Math.max(...grid.flatMap((cell) => cell.lines.map((line) => textWidth(line, CELL_FONT))));
  const widestXTick = Math.max(...options.xValues.map((value) => textWidth(formatAxisValue(value), TICK_FONT)));
  const widestYTick = Math.max(...options.yValues.map((value) => textWidth(formatAxisValue(value), TICK_FONT)));
  const mostLines = Math.max(...grid.map((cell) => cell.lines.length));

  const xTitleWidth = textWidth(options.xLabel, TEXT_FONT);
  const yTitleWidth = textWidth(options.yLabel, TEXT_FONT);
  const cellWidth = Math.ceil(Math.max(MIN_CELL_WIDTH, widestLabel + 10, widestXTick + 8, (Math.max(MIN_GRID_SIDE, xTitleWidth + 8)) / columns));
  const cellHeight = Math.ceil(Math.max(MIN_CELL_HEIGHT, mostLines * CELL_FONT * 1.2 + 14, Math.max(MIN_GRID_SIDE, yTitleWidth + 8) / rows));
  const gridWidth = cellWidth * columns;
  const gridHeight = cellHeight * rows;

  // header: title, subtitle, legend lines, then room for the colour bar caption above the grid
  const headerLines = [MARGIN + TITLE_FONT];
  if (options.subtitle) headerLines.push(headerLines[headerLines.length - 1] + TEXT_FONT + 8);
  for (let i = 0; i < legend.length; i++) headerLines.push(headerLines[headerLines.length - 1] + TEXT_FONT + 8);
  const gridTop = headerLines[headerLines.length - 1] + 22 + TEXT_FONT;
  const gridLeft = MARGIN + TEXT_FONT + 8 + widestYTick + 8;

  // colour bar: tick labels on its left (in the gap after the grid), reference caption on its right
  const widestBarTick = Math.max(0, ...ticks.map((tick) => textWidth(tick.label, TICK_FONT)));
  const colourBarLeft = gridLeft + gridWidth + 20 + widestBarTick + 8;
  const colourBarRight = colourBarLeft + COLOUR_BAR_WIDTH + (referenceCaption ? 14 + textWidth(referenceCaption, TICK_FONT, true) : 0);
  const headerWidth = Math.max(
    textWidth(options.title, TITLE_FONT, true),
    textWidth(options.subtitle ?? '', TEXT_FONT),
    ...legend.map((entry) => 20 + textWidth(entry.text, TEXT_FONT)),
  );
  const width = Math.ceil(Math.max(colourBarRight, colourBarLeft + textWidth(options.valueLabel, TEXT_FONT), MARGIN + headerWidth) + MARGIN);
  const height = Math.ceil(gridTop + gridHeight + TICK_FONT + 10 + TEXT_FONT + 10 + MARGIN);
  return { width, height, gridLeft, gridTop, cellWidth, cellHeight, gridWidth, gridHeight, colourBarLeft, headerLines };
}

function text(x: number, y: number, content: string, attributes = ''): string {
  return `<text x="${num(x)}" y="${num(y)}"${attributes ? ' ' + attributes : ''}>${escapeXml(content)}</text>`;
}

/** The solid down-pointing triangle that flags a value below the reference, top-left corner at (x, y). */
function belowReferenceMark(x: number, y: number, width: number, fill: string, attributes = ''): string {
  return `<path${attributes ? ' ' + attributes : ''} d="M${num(x)} ${num(y)}h${num(width)}l${num(-width / 2)} ${num(width * 0.85)}z" fill="${fill}"/>`;
}

function renderHeader(options: HeatmapOptions, layout: Layout, legend: LegendEntry[]): string[] {
  const [titleBaseline, ...rest] = layout.headerLines;
  const parts = [text(MARGIN, titleBaseline, options.title, `font-size="${TITLE_FONT}" font-weight="bold" fill="#000000"`)];
  if (options.subtitle) parts.push(text(MARGIN, rest.shift()!, options.subtitle, `font-size="${TEXT_FONT}" fill="${MUTED_TEXT}"`));
  legend.forEach((entry, i) => {
    const baseline = rest[i];
    if (entry.kind === 'highlight') {
      parts.push(`<rect x="${num(MARGIN + 1.5)}" y="${num(baseline - 10.5)}" width="11" height="11" fill="#ffffff" stroke="#000000" stroke-width="3"/>`);
    } else {
      parts.push(belowReferenceMark(MARGIN + 2, baseline - 8.5, 8, '#000000'));
    }
    parts.push(text(MARGIN + 20, baseline, entry.text, `font-size="${TEXT_FONT}" fill="#000000"`));
  });
  return parts;
}

function isHighlighted(options: HeatmapOptions, cell: GridCell): boolean {
  return options.highlight?.x === options.xValues[cell.column] && options.highlight?.y === options.yValues[cell.row];
}

function renderCells(options: HeatmapOptions, layout: Layout, grid: GridCell[], colourOf: (value: number) => string): string[] {
  const { cellWidth, cellHeight } = layout;
  const parts: string[] = [];
  for (const cell of grid) {
    const x = layout.gridLeft + cell.column * cellWidth;
    const y = layout.gridTop + (options.yValues.length - 1 - cell.row) * cellHeight;
    const fill = cell.value === null ? UNMEASURED_FILL : colourOf(cell.value);
    const ink = cell.value === null ? UNMEASURED_TEXT : textColourOn(fill);
    const tooltip = `${options.xLabel} ${formatAxisValue(options.xValues[cell.column])}, ${options.yLabel} ${formatAxisValue(options.yValues[cell.row])}: ${cell.lines.join(' ')}`;
    parts.push(`<g><title>${escapeXml(tooltip)}</title>`);
    parts.push(`<rect class="cell" x="${num(x)}" y="${num(y)}" width="${num(cellWidth)}" height="${num(cellHeight)}" fill="${fill}" stroke="#ffffff" stroke-width="1"/>`);
    if (cell.value === null) {
      parts.push(`<rect x="${num(x + 0.5)}" y="${num(y + 0.5)}" width="${num(cellWidth - 1)}" height="${num(cellHeight - 1)}" fill="url(#${HATCH_ID})"/>`);
    }
    if (options.reference && cell.value !== null && cell.value < options.reference.value) {
      const inset = isHighlighted(options, cell) ? 6 : 2.5; // clear of the highlight outline
      parts.push(belowReferenceMark(x + inset, y + inset, 6, ink, 'class="below-reference"'));
    }
    const lineHeight = CELL_FONT * 1.2;
    const firstBaseline = y + cellHeight / 2 - ((cell.lines.length - 1) * lineHeight) / 2 + CELL_FONT * 0.36;
    cell.lines.forEach((line, i) => {
      parts.push(text(x + cellWidth / 2, firstBaseline + i * lineHeight, line, `font-size="${CELL_FONT}" text-anchor="middle" fill="${ink}"`));
    });
    parts.push('</g>');
  }
  return parts;
}

function renderHighlight(options: HeatmapOptions, layout: Layout): string[] {
  if (!options.highlight) return [];
  const column = options.xValues.indexOf(options.highlight.x);
  const row = options.yValues.indexOf(options.highlight.y);
  const x = layout.gridLeft + column * layout.cellWidth;
  const y = layout.gridTop + (options.yValues.length - 1 - row) * layout.cellHeight;
  return [
    `<rect class="highlight" x="${num(x + 1.5)}" y="${num(y + 1.5)}" width="${num(layout.cellWidth - 3)}" height="${num(layout.cellHeight - 3)}" fill="none" stroke="#000000" stroke-width="3"/>`,
    `<rect x="${num(x + 3.5)}" y="${num(y + 3.5)}" width="${num(layout.cellWidth - 7)}" height="${num(layout.cellHeight - 7)}" fill="none" stroke="#ffffff" stroke-width="1"/>`,
  ];
}

function renderAxes(options: HeatmapOptions, layout: Layout): string[] {
  const { gridLeft, gridTop, gridWidth, gridHeight, cellWidth, cellHeight } = layout;
  const tickAttributes = `font-size="${TICK_FONT}" fill="#000000"`;
  const parts: string[] = [];
  const xTickBaseline = gridTop + gridHeight + TICK_FONT + 5;
  options.xValues.forEach((value, column) => {
    parts.push(text(gridLeft + (column + 0.5) * cellWidth, xTickBaseline, formatAxisValue(value), `${tickAttributes} text-anchor="middle"`));
  });
  options.yValues.forEach((value, row) => {
    const centre = gridTop + (options.yValues.length - 1 - row + 0.5) * cellHeight;
    parts.push(text(gridLeft - 6, centre + TICK_FONT * 0.36, formatAxisValue(value), `${tickAttributes} text-anchor="end"`));
  });
  parts.push(text(gridLeft + gridWidth / 2, xTickBaseline + TEXT_FONT + 9, options.xLabel, `font-size="${TEXT_FONT}" font-weight="bold" text-anchor="middle" fill="#000000"`));
  const yTitleX = MARGIN + TEXT_FONT;
  const yTitleY = gridTop + gridHeight / 2;
  parts.push(text(yTitleX, yTitleY, options.yLabel, `font-size="${TEXT_FONT}" font-weight="bold" text-anchor="middle" fill="#000000" transform="rotate(-90 ${num(yTitleX)} ${num(yTitleY)})"`));
  return parts;
}

function renderColourBar(options: HeatmapOptions, layout: Layout, range: { low: number; high: number }, ticks: ColourBarTick[], referenceCaption: string): string[] {
  const left = layout.colourBarLeft;
  const top = layout.gridTop;
  const height = layout.gridHeight;
  const yOf = (value: number) => top + height * (1 - Math.min(1, Math.max(0, (value - range.low) / (range.high - range.low))));
  const parts = [
    text(left, top - 12, options.valueLabel, `font-size="${TEXT_FONT}" font-weight="bold" fill="#000000"`),
    `<rect x="${num(left)}" y="${num(top)}" width="${COLOUR_BAR_WIDTH}" height="${num(height)}" fill="url(#${GRADIENT_ID})" stroke="#000000" stroke-width="0.5"/>`,
  ];
  for (const tick of ticks) {
    const y = yOf(tick.value);
    parts.push(`<line x1="${num(left - 4)}" y1="${num(y)}" x2="${num(left)}" y2="${num(y)}" stroke="#000000" stroke-width="1"/>`);
    parts.push(text(left - 7, y + TICK_FONT * 0.36, tick.label, `class="colour-bar-tick" font-size="${TICK_FONT}" text-anchor="end" fill="#000000"`));
  }
  if (options.reference) {
    const y = yOf(options.reference.value);
    const right = left + COLOUR_BAR_WIDTH;
    parts.push(`<line x1="${num(left - 2)}" y1="${num(y)}" x2="${num(right + 2)}" y2="${num(y)}" stroke="#ffffff" stroke-width="4"/>`);
    parts.push(`<line x1="${num(left - 2)}" y1="${num(y)}" x2="${num(right + 2)}" y2="${num(y)}" stroke="#000000" stroke-width="2"/>`);
    parts.push(`<path d="M${num(right + 4)} ${num(y)}l6 -4v8z" fill="#000000"/>`);
    parts.push(text(right + 14, y + TICK_FONT * 0.36, referenceCaption, `class="reference" font-size="${TICK_FONT}" font-weight="bold" fill="#000000"`));
  }
  return parts;
}

function renderDefinitions(): string[] {
  const stops = VIRIDIS_ANCHORS.map((colour, i) => `<stop offset="${num(i / (VIRIDIS_ANCHORS.length - 1))}" stop-color="${colour}"/>`);
  return [
    '<defs>',
    `<linearGradient id="${GRADIENT_ID}" x1="0" y1="1" x2="0" y2="0">${stops.join('')}</linearGradient>`,
    `<pattern id="${HATCH_ID}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">` +
      `<line x1="0" y1="0" x2="0" y2="6" stroke="#c8c8c8" stroke-width="2"/></pattern>`,
    '</defs>',
  ];
}

export function renderHeatmapSvg(options: HeatmapOptions): string {
  validate(options);
  const format = options.format ?? formatSignificant;
  const grid = buildGrid(options, format);

  // colour range over the measured cells; a constant (or empty) grid gets a range centred on its value
  const measured = grid.flatMap((cell) => (cell.value === null ? [] : [cell.value]));
  let low = measured.length ? Math.min(...measured) : 0;
  let high = measured.length ? Math.max(...measured) : 1;
  if (high === low) {
    const pad = Math.abs(low) * 0.1 || 1;
    low -= pad;
    high += pad;
  }
  const colourOf = (value: number) => viridisColour((value - low) / (high - low));
  const ticks = measured.length ? colourBarTicks(low, high, options.format) : [];

  const legend: LegendEntry[] = [];
  if (options.highlight) {
    const { x, y, caption } = options.highlight;
    const column = options.xValues.indexOf(x);
    const row = options.yValues.indexOf(y);
    if (column < 0 || row < 0) throw new Error(`renderHeatmapSvg: options.highlight (${x}, ${y}) is not on the xValues × yValues grid`);
    const cell = grid.find((candidate) => candidate.column === column && candidate.row === row)!;
    const valueText = cell.value === null ? '' : `: ${format(cell.value)} ${options.valueLabel}`;
    legend.push({ kind: 'highlight', text: caption ?? `best: ${options.xLabel} ${formatAxisValue(x)}, ${options.yLabel} ${formatAxisValue(y)}${valueText}` });
  }
  let referenceCaption = '';
  if (options.reference) {
    const { value, caption } = options.reference;
    const offScale = !measured.length ? '' : value < low ? ' (below scale)' : value > high ? ' (above scale)' : '';
    referenceCaption = `${caption} ${format(value)}${offScale}`;
    legend.push({ kind: 'below-reference', text: `below ${caption} (${format(value)} ${options.valueLabel})` });
  }

  const layout = computeLayout(options, grid, legend, ticks, referenceCaption);
  const body = [
    `<rect x="0" y="0" width="${layout.width}" height="${layout.height}" fill="#ffffff"/>`,
    ...renderHeader(options, layout, legend),
    ...renderCells(options, layout, grid, colourOf),
    ...renderHighlight(options, layout),
    ...renderAxes(options, layout),
    ...renderColourBar(options, layout, { low, high }, ticks, referenceCaption),
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${layout.width}" height="${layout.height}" ` +
      `viewBox="0 0 ${layout.width} ${layout.height}" font-family="${FONT_FAMILY}">`,
    `<title>${escapeXml(options.title)}</title>`,
    ...renderDefinitions(),
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
