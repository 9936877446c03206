import { createAppLogger } from './app-logger';

describe('createAppLogger (text)', () => {
  let writes: { stream: string; text: string }[];
  let restore: (() => void)[];

  beforeEach(() => {
    writes = [];
    restore = (['stdout', 'stderr'] as const).map((stream) => {
      const spy = jest
        .spyOn(process[stream], 'write')
        .mockImplementation((text: string | Uint8Array) => {
          writes.push({ stream, text: String(text) });
          return true;
        });
      return () => spy.mockRestore();
    });
  });

  afterEach(() => restore.forEach((undo) => undo()));

  it('writes the lines of one turn to stdout together, in order', async () => {
    const logger = createAppLogger('log', 'text');
    logger.log('first', 'HTTP');
    logger.log('second', 'HTTP');
    logger.warn('third', 'HTTP');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(1);
    const lines = writes[0].text.trimEnd().split('\n');
    expect(lines.map((line) => line.replace(/^.*\[HTTP\] /, ''))).toEqual([
      'first',
      'second',
      'third',
    ]);
    expect(lines[2]).toMatch(/WARN \[HTTP\]/);
  });

  it('writes queued lines before an error, which goes to stderr at once', () => {
    const logger = createAppLogger('log', 'text');
    logger.log('before', 'App');
    logger.error('broken', undefined, 'App');
    expect(
      writes.map((w) => [w.stream, w.text.includes('before'), w.text.includes('broken')]),
    ).toEqual([
      ['stdout', true, false],
      ['stderr', false, true],
    ]);
  });

  it('leaves out levels below LOG_LEVEL', async () => {
    const logger = createAppLogger('warn', 'text');
    logger.log('quiet', 'HTTP');
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual([]);
  });
});
