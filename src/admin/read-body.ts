import { HttpStatus } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { ApiProblemException } from '../common/problems/api-problem.exception';

/**
 * The whole body of a request, refused with 413 past `limitBytes` (Content-Length is checked
 * first, then the bytes as they arrive).
 */
export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new ApiProblemException(
      HttpStatus.PAYLOAD_TOO_LARGE,
      'PAYLOAD_TOO_LARGE',
      `The upload is larger than the server accepts (${limitBytes} bytes, RESTORE_MAX_BYTES)`,
    );
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limitBytes) throw tooLarge();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer) => {
      total += chunk.length;
      if (total <= limitBytes) {
        chunks.push(chunk);
        return;
      }
      // Refuse now, and let the rest of the upload drain unread so the answer reaches the client.
      req.off('data', onData);
      req.resume();
      reject(tooLarge());
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}
