'use strict';
// Shared by the Node.js gRPC client's scripts (rocketmq-client-nodejs 1.0.8, through actormq's
// proxy): argument parsing, JSON output lines, the client options, an exit that flushes stdout.
// The client is resolved through NODE_PATH (the runner points it at .interop/node5/node_modules);
// it logs to ~/logs/rocketmq/rocketmq_client_nodejs.log (each process gets its own HOME).

// Positional arguments by name, then --options (their defaults give their types; a list option,
// default [], takes comma-separated values).
function parseArgs(argv, positional, defaults) {
  const args = Object.assign({}, defaults);
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      rest.push(arg);
      continue;
    }
    const name = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(name in defaults)) {
      throw new Error(`unknown option ${arg}`);
    }
    const value = argv[++i];
    if (value === undefined) {
      throw new Error(`option ${arg} needs a value`);
    }
    const kind = defaults[name];
    if (Array.isArray(kind)) {
      args[name] = value.split(',').filter(Boolean);
    } else {
      args[name] = typeof kind === 'number' ? Number(value) : value;
    }
  }
  if (rest.length !== positional.length) {
    throw new Error(`usage: ${positional.join(' ')} [options], got ${rest.join(' ')}`);
  }
  positional.forEach((name, i) => {
    args[name] = rest[i];
  });
  return args;
}

// One JSON object per stdout line; the tests parse these.
function emit(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields)) + '\n');
}

// process.exit() drops what is still queued for a pipe (Node writes pipes asynchronously):
// exit once everything emitted so far has been flushed.
function exit(code) {
  process.stdout.write('', () => process.exit(code));
}

function fail(err) {
  emit('error', { error: `${err && err.name}: ${err && err.message}` });
  exit(1);
}

// The options every client takes: the proxy's address, no namespace, 3 s per request.
function clientOptions(endpoint) {
  return { endpoints: endpoint, namespace: '', requestTimeout: 3000 };
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
    at_ms: Date.now(),
  };
}

module.exports = { parseArgs, emit, exit, fail, clientOptions, describe };
