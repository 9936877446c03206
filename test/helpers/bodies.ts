import type request from 'supertest';

/** Superagent keeps unknown types unread unless told to buffer them as bytes: `res.body` is a Buffer. */
export function bytes(test: request.Test): request.Test {
  return test.buffer(true).parse((res, done) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => done(null, Buffer.concat(chunks)));
  });
}

export const NDJSON = 'application/x-ndjson';

/** Asks for NDJSON and keeps the body as text (`res.body`), since superagent would not read it. */
export function ndjson(test: request.Test): request.Test {
  return test
    .set('Accept', NDJSON)
    .buffer(true)
    .parse((res, done) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => done(null, text));
    });
}

/** The rows of an NDJSON body: one JSON text per line, each line ending in \n. */
export function lines(text: string): unknown[] {
  expect(text.endsWith('\n') || text === '').toBe(true);
  return text === ''
    ? []
    : text
        .slice(0, -1)
        .split('\n')
        .map((line) => JSON.parse(line));
}
