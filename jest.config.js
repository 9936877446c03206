/**
 * Three projects: unit specs beside the code, and the e2e specs in test/ run twice, once per
 * HTTP adapter (TEST_HTTP_ADAPTER, read by test/helpers/test-app.ts). `npm test` runs all three.
 */
const common = {
  moduleFileExtensions: ['js', 'json', 'ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testEnvironment: 'node',
};
const e2e = { ...common, rootDir: 'test', testRegex: '.*\\.e2e-spec\\.ts$' };

module.exports = {
  projects: [
    { ...common, displayName: 'unit', rootDir: 'src', testRegex: '.*\\.spec\\.ts$' },
    { ...e2e, displayName: 'e2e', setupFiles: ['<rootDir>/helpers/adapter-express.ts'] },
    { ...e2e, displayName: 'e2e-fastify', setupFiles: ['<rootDir>/helpers/adapter-fastify.ts'] },
  ],
};
