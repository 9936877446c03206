import { encodeEntry, readEntries } from './log-format';

const entries = [{ op: 'put', n: 1 }, { text: 'line\nbreak ✓' }, [1, null, 'x']];
const file = Buffer.concat(entries.map(encodeEntry));

describe('log format', () => {
  it('reads back every entry it wrote, with their offsets', () => {
    const read = readEntries(file);
    expect(read.entries).toEqual(entries);
    expect(read.validBytes).toBe(file.length);
    expect(read.offsets[0]).toBe(0);
    expect(read.offsets[1]).toBe(encodeEntry(entries[0]).length);
    expect(read.truncatedTail).toBeUndefined();
    expect(read.corruption).toBeUndefined();
  });

  it('writes one line per entry: checksum, space, JSON', () => {
    const line = encodeEntry({ a: 'b\nc' }).toString();
    expect(line).toMatch(/^[0-9a-f]{8} \{"a":"b\\nc"\}\n$/);
  });

  it.each([1, 5, 9, 20])('reads a last entry cut after %i bytes as a truncated tail', (kept) => {
    const last = encodeEntry({ cut: 'short' });
    const read = readEntries(Buffer.concat([file, last.subarray(0, kept)]));
    expect(read.entries).toEqual(entries);
    expect(read.validBytes).toBe(file.length);
    expect(read.truncatedTail?.offset).toBe(file.length);
    expect(read.corruption).toBeUndefined();
  });

  it('finds a flipped byte anywhere in an entry as corruption at its start', () => {
    const second = encodeEntry(entries[0]).length;
    for (let at = second; at < file.length - encodeEntry(entries[2]).length - 1; at++) {
      const damaged = Buffer.from(file);
      damaged[at] ^= 0x01;
      const read = readEntries(damaged);
      expect({ at, offset: read.corruption?.offset }).toEqual({ at, offset: second });
      expect(read.entries).toEqual([entries[0]]);
      expect(read.validBytes).toBe(second);
    }
  });

  it('refuses lines that are not entries', () => {
    expect(readEntries(Buffer.from('hello world\n')).corruption?.reason).toBe('not an entry line');
    expect(readEntries(Buffer.from('\n')).corruption?.offset).toBe(0);
  });
});
