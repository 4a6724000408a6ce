// Statistical checks shared by the sampling tests.

// Two-sample chi-square test of homogeneity at α = 0.001; the critical value by Wilson–Hilferty.
export function chiSquare(a: number[], b: number[]): { statistic: number; critical: number; df: number } {
  const counts = new Map<number, [number, number]>();
  for (const value of a) (counts.get(value) ?? counts.set(value, [0, 0]).get(value)!)[0]++;
  for (const value of b) (counts.get(value) ?? counts.set(value, [0, 0]).get(value)!)[1]++;
  const cells: [number, number][] = [];
  const pooled: [number, number] = [0, 0];
  for (const cell of counts.values()) {
    if (cell[0] + cell[1] >= 10) cells.push(cell);
    else (pooled[0] += cell[0]), (pooled[1] += cell[1]);
  }
  if (pooled[0] + pooled[1] > 0) cells.push(pooled);
  let statistic = 0;
  for (const [x, y] of cells) {
    const total = x + y;
    const expectedX = (total * a.length) / (a.length + b.length);
    const expectedY = total - expectedX;
    statistic += (x - expectedX) ** 2 / expectedX + (y - expectedY) ** 2 / expectedY;
  }
  const df = Math.max(1, cells.length - 1);
  const z = 3.0902; // upper 0.001 quantile of N(0, 1)
  const critical = df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
  return { statistic, critical, df };
}
