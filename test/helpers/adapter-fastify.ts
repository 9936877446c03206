// jest.config.js: the e2e-fastify project runs the same suite on Fastify.
process.env.TEST_HTTP_ADAPTER = 'fastify';
