'use strict';
// node lite_consumer.js ENDPOINT GROUP TOPIC --lites L1,L2 [--suspend-once BODY,...]
// RocketMQ 5's Node.js LitePushConsumer bound to TOPIC (a LITE topic), subscribed to the lite
// topics L1, L2, ...: prints ready once started and subscribed, one consumed line per message
// (with its lite_topic), a suspended line for the first delivery of each --suspend-once body
// (answered ConsumeResultSuspend of 300 ms: it comes back without a retry counted), stopped
// after SIGTERM. Exits by itself after shutdown (1.0.8 leaves a logger interval running).

const { LitePushConsumerBuilder, ConsumeResult, ConsumeResultSuspend } = require('rocketmq-client-nodejs');
const { parseArgs, emit, exit, fail, clientOptions, describe } = require('./common');

async function main() {
  const args = parseArgs(process.argv.slice(2), [ 'endpoint', 'group', 'topic' ], {
    lites: [],
    suspendOnce: [],
  });
  const suspendOnce = new Set(args.suspendOnce);
  let stop;
  const stopping = new Promise(resolve => {
    stop = resolve;
  });
  process.on('SIGTERM', () => stop());
  const consumer = await new LitePushConsumerBuilder()
    .setClientConfiguration(clientOptions(args.endpoint))
    .setConsumerGroup(args.group)
    .bindTopic(args.topic)
    .setMessageListener({
      async consume(msg) {
        const seen = { ...describe(msg), lite_topic: msg.liteTopic || null };
        if (suspendOnce.delete(seen.body)) {
          emit('suspended', seen);
          return ConsumeResultSuspend.of(300);
        }
        emit('consumed', seen);
        return ConsumeResult.SUCCESS;
      },
    })
    .build();
  for (const lite of args.lites) {
    await consumer.subscribeLite(lite);
  }
  emit('ready', { client_id: consumer.clientId, lites: [ ...consumer.getLiteTopicSet() ].sort() });
  try {
    await stopping;
  } finally {
    await consumer.close();
  }
  emit('stopped');
}

main().then(() => exit(0), fail);
