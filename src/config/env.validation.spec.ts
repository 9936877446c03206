import { validateEnv } from './env.validation';

describe('validateEnv', () => {
  it('applies the documented defaults', () => {
    expect({ ...validateEnv({}) }).toEqual({
      PORT: 8000,
      BODY_LIMIT: 1024 * 1024,
      THROTTLE_LIMIT: 1000,
      THROTTLE_TTL_MS: 1000,
      LOG_LEVEL: 'log',
      LOG_FORMAT: 'text',
      LOCK_TIMEOUT_MS: 5000,
      BULK_MAX: 1000,
    });
  });

  it('parses numbers and sizes, and treats empty values as unset', () => {
    const env = validateEnv({
      PORT: '9000',
      BODY_LIMIT: '512kb',
      THROTTLE_LIMIT: '0',
      HOST: '127.0.0.1',
      LOG_FORMAT: '',
      OTHER: 'x',
    });

    expect(env).toMatchObject({
      PORT: 9000,
      BODY_LIMIT: 512 * 1024,
      THROTTLE_LIMIT: 0,
      HOST: '127.0.0.1',
      LOG_FORMAT: 'text',
    });
    expect(env).not.toHaveProperty('OTHER');
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '8e3'],
    ['PORT', '70000'],
    ['BODY_LIMIT', 'huge'],
    ['THROTTLE_LIMIT', '-1'],
    ['THROTTLE_TTL_MS', '0'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_FORMAT', 'xml'],
    ['MAX_MEMORY_MB', '1'],
  ])('stops on %s=%s with a message naming the variable', (key, value) => {
    expect(() => validateEnv({ [key]: value })).toThrow(
      new RegExp(`Invalid configuration:[\\s\\S]*${key}=`),
    );
  });
});
