// jest.config.js: the e2e project runs the suite on Express (HTTP_ADAPTER's default).
process.env.TEST_HTTP_ADAPTER = 'express';
