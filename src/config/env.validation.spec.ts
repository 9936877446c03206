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
      MAX_DEPTH: 32,
      MAX_RESULT_ROWS: 100_000,
      MIN_SEQ_WAIT_MS: 2000,
      DOCS_ENABLED: true,
      THROTTLE_MAX_CLIENTS: 100_000,
      HTTP_ADAPTER: 'express',
      FSYNC: 'everysec',
      DATA_REPAIR: false,
      COMPACT_RATIO: 2,
      COMPACT_MIN_BYTES: 64 * 1024 * 1024,
      SHUTDOWN_TIMEOUT_MS: 10_000,
      RESTORE_MAX_BYTES: 1024 * 1024 * 1024,
      SNAPSHOT_MAX_MB: 256,
      IDEMPOTENCY_TTL_MS: 600_000,
      IDEMPOTENCY_MAX_MB: 64,
      REDIS_KEY_PREFIX: 'memdb:',
      NATS_STREAM: 'memdb',
      NATS_REPLICAS: 1,
      WRITE_TIMEOUT_MS: 5000,
      MAX_LAG: 10_000,
      SNAPSHOT_EVERY: 100_000,
      NATS_RETAIN: 200_000,
      CHANGES_RETAIN: 100_000,
      CHANGES_RETAIN_MB: 64,
      CHANGES_HEARTBEAT_MS: 15_000,
      CHANGES_BUFFER_BYTES: 1_048_576,
      CHANGES_MAX_SUBSCRIBERS: 1000,
    });
  });

  it('reads every integer setting from its text, with no list of them to keep', () => {
    // Every setting whose default is a number, given as text: twice its default.
    const doubled = Object.entries(validateEnv({}))
      .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
      .map(([key, value]) => [key, value * 2] as const);
    const text = Object.fromEntries(doubled.map(([key, value]) => [key, String(value)]));

    const env = validateEnv({ ...text, MAX_MEMORY_MB: '64' });

    expect(doubled.length).toBeGreaterThan(10);
    expect(env).toMatchObject({ ...Object.fromEntries(doubled), MAX_MEMORY_MB: 64 });
  });

  it.each(['12abc', '1.5', '8e3', '0x10', '+5', '1 000'])(
    'refuses the integer setting PORT=%s, saying it must be a whole number',
    (value) => {
      expect(() => validateEnv({ PORT: value })).toThrow(
        `Invalid configuration:\n  PORT=${JSON.stringify(value)}: PORT must be a whole number, in digits`,
      );
    },
  );

  it('reads an integer with spaces around it, and still checks its range', () => {
    expect(validateEnv({ PORT: '  12 ' }).PORT).toBe(12);
    expect(() => validateEnv({ PORT: ' 0 ' })).toThrow('PORT=0: PORT must not be less than 1');
  });

  it('bounds SNAPSHOT_MAX_MB to 1..1048576 MiB', () => {
    expect(validateEnv({ SNAPSHOT_MAX_MB: '1048576' }).SNAPSHOT_MAX_MB).toBe(1_048_576);
    expect(() => validateEnv({ SNAPSHOT_MAX_MB: '0' })).toThrow(/SNAPSHOT_MAX_MB=0/);
    expect(() => validateEnv({ SNAPSHOT_MAX_MB: '1048577' })).toThrow(/SNAPSHOT_MAX_MB=1048577/);
  });

  it.each([
    ['IDEMPOTENCY_TTL_MS', 1000, 86_400_000],
    ['IDEMPOTENCY_MAX_MB', 1, 4096],
  ] as const)('bounds %s to %i..%i', (name, min, max) => {
    expect(validateEnv({ [name]: String(min) })[name]).toBe(min);
    expect(validateEnv({ [name]: String(max) })[name]).toBe(max);
    expect(() => validateEnv({ [name]: String(min - 1) })).toThrow(
      new RegExp(`${name}=${min - 1}`),
    );
    expect(() => validateEnv({ [name]: String(max + 1) })).toThrow(
      new RegExp(`${name}=${max + 1}`),
    );
  });

  it('reads the persistence settings', () => {
    expect(
      validateEnv({
        DATA_DIR: '/var/lib/memdb',
        FSYNC: 'Always',
        DATA_REPAIR: 'true',
        COMPACT_MIN_BYTES: '1mb',
      }),
    ).toMatchObject({
      DATA_DIR: '/var/lib/memdb',
      FSYNC: 'always',
      DATA_REPAIR: true,
      COMPACT_MIN_BYTES: 1024 * 1024,
    });
    expect(() => validateEnv({ FSYNC: 'sometimes' })).toThrow(
      /FSYNC must be always, everysec or no/,
    );
    expect(() => validateEnv({ DATA_REPAIR: 'yes' })).toThrow(/DATA_REPAIR must be true or false/);
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
    ['MAX_DEPTH', '0'],
    ['DOCS_ENABLED', 'yes'],
    ['CORS_ORIGINS', 'example.com'],
    ['TRUST_PROXY', '10.0.0.0/99'],
    ['TRUST_PROXY', 'proxy.local'],
    ['HTTP_ADAPTER', 'koa'],
  ])('stops on %s=%s with a message naming the variable', (key, value) => {
    expect(() => validateEnv({ [key]: value })).toThrow(
      new RegExp(`Invalid configuration:[\\s\\S]*${key}=`),
    );
  });

  it('reads HTTP_ADAPTER in any case and names both choices when it is wrong', () => {
    expect(validateEnv({ HTTP_ADAPTER: 'fastify' }).HTTP_ADAPTER).toBe('fastify');
    expect(validateEnv({ HTTP_ADAPTER: ' Fastify ' }).HTTP_ADAPTER).toBe('fastify');
    expect(() => validateEnv({ HTTP_ADAPTER: 'koa' })).toThrow(
      'HTTP_ADAPTER="koa": HTTP_ADAPTER must be express or fastify',
    );
  });

  it('parses API_KEYS, CORS_ORIGINS and TRUST_PROXY', () => {
    const env = validateEnv({
      API_KEYS: 'reader-key-0123456789:read, admin-key-0123456789:admin',
      CORS_ORIGINS: 'https://app.example.com,http://localhost:3000',
      TRUST_PROXY: '10.0.0.0/8,loopback',
    });

    expect(env.API_KEYS).toEqual([
      { key: 'reader-key-0123456789', role: 'read' },
      { key: 'admin-key-0123456789', role: 'admin' },
    ]);
    expect(env.CORS_ORIGINS).toEqual(['https://app.example.com', 'http://localhost:3000']);
    expect(validateEnv({ TRUST_PROXY: '1' }).TRUST_PROXY).toBe(1);
  });

  it('accepts short keys, any visible characters and roles in any case', () => {
    expect(validateEnv({ API_KEYS: 'k1:read,k:2:ADMIN' }).API_KEYS).toEqual([
      { key: 'k1', role: 'read' },
      { key: 'k:2', role: 'admin' },
    ]);
    expect(validateEnv({ TRUST_PROXY: 'false' }).TRUST_PROXY).toBe(0);
    expect(validateEnv({ LOG_LEVEL: 'info' }).LOG_LEVEL).toBe('log');
    expect(validateEnv({ LOG_LEVEL: 'DEBUG' }).LOG_LEVEL).toBe('debug');
    expect(validateEnv({ CORS_ORIGINS: '*' }).CORS_ORIGINS).toEqual(['*']);
  });

  it.each([
    'with space:read',
    'a-long-enough-key-123:root',
    'a-long-enough-key-123:read,a-long-enough-key-123:admin',
    'no-role-here-123456',
  ])('refuses API_KEYS=%s without echoing it', (value) => {
    expect(() => validateEnv({ API_KEYS: value })).toThrow(/API_KEYS=<redacted>/);
    try {
      validateEnv({ API_KEYS: value });
    } catch (error) {
      expect((error as Error).message).not.toContain(value.split(':')[0]);
    }
  });

  it.each([
    'redis://127.0.0.1:6379',
    'rediss://user:pa%40ss@redis.example.com:6380/2',
    'redis://r',
  ])('accepts REDIS_URL=%s', (value) => {
    expect(validateEnv({ REDIS_URL: value }).REDIS_URL).toBe(value);
  });

  it.each(['127.0.0.1:6379', 'http://redis:6379', 'redis://', 'redis://secret-pw@h:6379/db'])(
    'refuses REDIS_URL=%s without echoing it (it may hold a password)',
    (value) => {
      expect(() => validateEnv({ REDIS_URL: value })).toThrow(
        /REDIS_URL=<redacted>: REDIS_URL must be a URL such as redis:\/\/host:6379/,
      );
      expect(() => validateEnv({ REDIS_URL: value })).not.toThrow(/secret-pw/);
    },
  );

  it('refuses a REDIS_KEY_PREFIX with spaces or over 64 characters', () => {
    expect(validateEnv({ REDIS_KEY_PREFIX: 'shop:memdb:' }).REDIS_KEY_PREFIX).toBe('shop:memdb:');
    expect(() => validateEnv({ REDIS_KEY_PREFIX: 'a b' })).toThrow(/REDIS_KEY_PREFIX="a b"/);
    expect(() => validateEnv({ REDIS_KEY_PREFIX: 'x'.repeat(65) })).toThrow(/REDIS_KEY_PREFIX/);
  });
});

describe('validateEnv: cluster mode', () => {
  it('reads NATS_URL as a list of server URLs', () => {
    const env = validateEnv({ NATS_URL: 'nats://10.0.0.1:4222, nats://10.0.0.2:4222' });

    expect(env.NATS_URL).toEqual(['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222']);
  });

  it.each([['http://x:4222'], ['nats://'], ['nats://a b']])('refuses NATS_URL=%p', (url) => {
    expect(() => validateEnv({ NATS_URL: url })).toThrow(/NATS_URL must list server URLs/);
  });

  it('refuses DATA_DIR with NATS_URL: the stream keeps the data in cluster mode', () => {
    expect(() => validateEnv({ NATS_URL: 'nats://127.0.0.1:4222', DATA_DIR: '/data' })).toThrow(
      /DATA_DIR and NATS_URL: set one/,
    );
  });

  it.each([
    ['NATS_STREAM', 'has space'],
    ['NATS_REPLICAS', '6'],
    ['WRITE_TIMEOUT_MS', '10'],
    ['REPLICA_NAME', 'a/b'],
  ])('refuses %s=%p', (key, value) => {
    expect(() => validateEnv({ [key]: value })).toThrow(new RegExp(key));
  });
});
