/**
 * Heap bytes per record for orders stored through StorageService (issue 5 target: <= 350 B for
 * a ~150-byte order). Run: node --expose-gc -r ts-node/register/transpile-only bench/memory.ts [count]
 */
import { StorageService } from '../src/database/storage.service';
import { machine, markdownTable, writeSection } from './results';

function heapUsed(): number {
  (global as { gc?: () => void }).gc?.();
  (global as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

async function main(): Promise<void> {
  if (typeof (global as { gc?: unknown }).gc !== 'function')
    throw new Error('run with node --expose-gc');
  const rows: Record<string, string | number>[] = [];
  for (const count of process.argv[2] ? [Number(process.argv[2])] : [100_000, 1_000_000]) {
    const db = StorageService.standalone({});
    const sample = {
      user_id: 'u123456',
      product_name: 'Analytical Engine, model 3',
      quantity: 2,
      total_price: 199.5,
      order_date: '2026-11-25T20:00:00Z',
    };
    const body = JSON.stringify({ ...sample, id: '00000000-0000-4000-8000-000000000000' });
    const before = heapUsed();
    const batch = 10_000;
    for (let start = 0; start < count; start += batch) {
      await db.createMany(
        'orders',
        Array.from({ length: batch }, (_, i) => ({
          ...sample,
          user_id: `u${(start + i) % 100_000}`,
          quantity: ((start + i) % 9) + 1,
        })),
      );
    }
    const after = heapUsed();
    const first = (await db.list('orders', { limit: 1, offset: 0, sort: [], count: false }))
      .items[0];
    rows.push({
      records: count,
      'JSON bytes/record (with id)': body.length,
      'stored JSON bytes/record': JSON.stringify(first).length,
      'heap bytes/record': Math.round((after - before) / count),
    });
  }
  console.log(`memory per record (${machine()})`);
  console.table(rows);
  writeSection(
    'memory',
    `## Memory per record\n\nCommand: \`npm run bench:memory\`. ${machine()}. Orders shaped like the \`orders\` typed table,\nstored through \`StorageService.createMany\` (server UUID ids, ISO timestamps, a sequence number).\n\n${markdownTable(rows)}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
