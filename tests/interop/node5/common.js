'use strict';
// Shared by the Node.js gRPC client's scripts (rocketmq-client-nodejs 1.0.8, through actormq's
// proxy): argument parsing, JSON output lines, the client options, an exit that flushes stdout.
// The client is resolved through NODE_PATH (the runner points it at .interop/node5/node_modules);
// it logs to ~/logs/rocketmq/rocketmq_client_nodejs.log (each process gets its own HOME).

// The remoting scripts' helpers serve here too: --option parsing, JSON lines, a flushing exit.
const ons = require('../ons/common');
const { emit, exit } = ons;

// Positional arguments (named by `positional`, first on the command line), then the --options
// of ons/common.js's parseArgs (their defaults give their types; a list option, default [],
// takes comma-separated values).
function parseArgs(argv, positional, defaults) {
  if (argv.length < positional.length || positional.some((_, i) => argv[i].startsWith('--'))) {
    throw new Error(`usage: ${positional.join(' ')} [--option value ...]`);
  }
  const lists = Object.keys(defaults).filter(name => Array.isArray(defaults[name]));
  const scalars = Object.assign({}, defaults);
  lists.forEach(name => {
    scalars[name] = '';
  });
  const args = ons.parseArgs(argv.slice(positional.length), scalars);
  lists.forEach(name => {
    args[name] = args[name].split(',').filter(Boolean);
  });
  positional.forEach((name, i) => {
    args[name] = argv[i];
  });
  return args;
}

function fail(err) {
  emit('error', { error: `${err && err.name}: ${err && err.message}` });
  exit(1);
}

// The options every client takes: the proxy's address, no namespace, 3 s per request; TLS
// with ACTORMQ_TLS=1 (trusting the certificate in GRPC_DEFAULT_SSL_ROOTS_FILE_PATH: grpc-js
// reads that variable itself).
function clientOptions(endpoint) {
  const sslEnabled = process.env.ACTORMQ_TLS === '1';
  return { endpoints: endpoint, namespace: '', requestTimeout: 3000, sslEnabled };
}

// What a received message carries, as JSON (the fields of grpc5/common.py's describe).
function describe(msg) {
  return {
    message_id: msg.messageId,
    topic: msg.topic,
    body: msg.body.toString(),
    tag: msg.tag || null,
    keys: [ ...msg.keys ].sort(),
    properties: Object.fromEntries(msg.properties),
    message_group: msg.messageGroup || null,
    attempt: msg.deliveryAttempt,
    corrupted: !!msg.corrupted,
    delivery_ms: msg.deliveryTimestamp ? msg.deliveryTimestamp.getTime() : null,
    priority: msg.priority === undefined ? null : msg.priority,
    at_ms: Date.now(),
  };
}

module.exports = { parseArgs, emit, exit, fail, clientOptions, describe };
