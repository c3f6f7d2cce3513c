'use strict';
// node simple_consumer.js ENDPOINT GROUP TOPIC --expect N [--expression E] [--invisible S]
//      [--never-ack BODY,...] [--ack-after-attempt K] [--seconds S]
// RocketMQ 5's Node.js SimpleConsumer: receives until N messages were acked (or S seconds
// passed); a message is acked once its delivery attempt reaches K (1: at once); bodies named by
// --never-ack are never acked. Prints ready, one received line per delivery, acked, done.

const { SimpleConsumer } = require('rocketmq-client-nodejs');
const { parseArgs, emit, exit, fail, clientOptions, describe } = require('./common');

async function main() {
  const args = parseArgs(process.argv.slice(2), [ 'endpoint', 'group', 'topic' ], {
    expect: 0,
    expression: '*',
    invisible: 10,
    neverAck: [],
    ackAfterAttempt: 1,
    seconds: 40,
  });
  const consumer = new SimpleConsumer({
    ...clientOptions(args.endpoint),
    consumerGroup: args.group,
    subscriptions: new Map([[ args.topic, args.expression ]]),
    awaitDuration: 2000,
  });
  await consumer.startup();
  emit('ready', { client_id: consumer.clientId });
  let acked = 0;
  try {
    const deadline = Date.now() + args.seconds * 1000;
    while (acked < args.expect && Date.now() < deadline) {
      for (const msg of await consumer.receive(16, args.invisible * 1000)) {
        emit('received', describe(msg));
        const body = msg.body.toString();
        if (args.neverAck.includes(body) || msg.deliveryAttempt < args.ackAfterAttempt) {
          continue;
        }
        await consumer.ack(msg);
        acked += 1;
        emit('acked', { message_id: msg.messageId, body });
      }
    }
  } finally {
    await consumer.shutdown();
  }
  emit('done', { acked });
}

main().then(() => exit(0), fail);
