'use strict';
// Shared bits of the ali-ons interop scripts: argument parsing, JSON-line output, a quiet logger.
// ali-ons is resolved through NODE_PATH (the runner points it at .interop/ons/node_modules).

const util = require('util');

function parseArgs(argv, defaults) {
  const args = Object.assign({}, defaults);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      throw new Error(`unexpected argument ${arg}`);
    }
    const name = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(name in defaults)) {
      throw new Error(`unknown option ${arg}`);
    }
    const value = argv[++i];
    if (value === undefined) {
      throw new Error(`option ${arg} needs a value`);
    }
    args[name] = typeof defaults[name] === 'number' ? Number(value) : value;
  }
  for (const [ name, value ] of Object.entries(args)) {
    if (value === null) {
      throw new Error(`option --${name} is required`);
    }
  }
  return args;
}

// One JSON object per stdout line; the tests parse these.
function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields)) + '\n');
}

function describeError(err) {
  return { name: err && err.name, message: String(err && err.message), code: err && err.code };
}

// ali-ons logs through options.logger. info/debug go to stderr only when ONS_VERBOSE is set.
function makeLogger() {
  const verbose = !!process.env.ONS_VERBOSE;
  const write = level => (...args) => {
    const text = args.map(a => (a instanceof Error ? a.stack : a));
    process.stderr.write(`[ali-ons ${level}] ${util.format(...text)}\n`);
  };
  const noop = () => {};
  return {
    debug: verbose ? write('debug') : noop,
    info: verbose ? write('info') : noop,
    warn: write('warn'),
    error: write('error'),
  };
}

// ali-ons asserts an httpclient is given; it is used only to fetch name server addresses from an
// HTTP endpoint, which never happens when nameSrv is set.
const httpclient = {
  async request(url) {
    throw new Error(`unexpected HTTP request to ${url}: nameSrv is set`);
  },
};

// RocketMQ's ACL: ali-ons signs every request when it has both keys (its Channel.beforeRequest).
function credentials(args) {
  return args.accessKey ? { accessKeyId: args.accessKey, accessKeySecret: args.secretKey } : {};
}

// process.exit() drops what is still queued for a pipe (Node writes pipes asynchronously):
// exit once everything emitted so far has been flushed.
function exit(code) {
  process.stdout.write('', () => process.exit(code));
}

module.exports = { parseArgs, emit, describeError, makeLogger, httpclient, exit, credentials };
