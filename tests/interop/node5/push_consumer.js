'use strict';
// node push_consumer.js ENDPOINT GROUP TOPIC [--expression E] [--fail-once BODY,...]
// RocketMQ 5's Node.js PushConsumer: prints ready once started, one consumed line per
// successful consumption (a failed line for the first delivery of each --fail-once body,
// answered FAILURE), stopped after SIGTERM.
//
// shutdown() waits for the receive in flight (up to the proxy's long polling), and 1.0.8 leaves
// a logger interval running after it: the process would never end, so it exits by itself.

const { PushConsumer, ConsumeResult } = require('rocketmq-client-nodejs');
const { parseArgs, emit, exit, fail, clientOptions, describe } = require('./common');

async function main() {
  const args = parseArgs(process.argv.slice(2), [ 'endpoint', 'group', 'topic' ], {
    expression: '*',
    failOnce: [],
  });
  const failOnce = new Set(args.failOnce);
  let stop;
  const stopping = new Promise(resolve => {
    stop = resolve;
  });
  process.on('SIGTERM', () => stop());
  const consumer = new PushConsumer({
    ...clientOptions(args.endpoint),
    consumerGroup: args.group,
    subscriptions: new Map([[ args.topic, args.expression ]]),
    messageListener: {
      async consume(msg) {
        const body = msg.body.toString();
        if (failOnce.delete(body)) {
          emit('failed', describe(msg));
          return ConsumeResult.FAILURE;
        }
        emit('consumed', describe(msg));
        return ConsumeResult.SUCCESS;
      },
    },
  });
  await consumer.startup();
  emit('ready', { client_id: consumer.clientId });
  try {
    await stopping;
  } finally {
    await consumer.shutdown();
  }
  emit('stopped');
}

main().then(() => exit(0), fail);
