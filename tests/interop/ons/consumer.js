'use strict';
// ali-ons push consumer (clustering, or broadcasting): one JSON line per received message.
//
//   node consumer.js --namesrv 127.0.0.1:9876 --topic T --group G --expression 'TagA || TagB'
//
// --fail-once TAG: messages with that tag fail their first delivery (ali-ons then sends them
// back with CONSUMER_SEND_MSG_BACK and they return through %RETRY%<group>).
// --sql EXPR: subscribe with a SQL92 property filter (expressionType SQL92) instead of
// --expression (the broker needs enablePropertyFilter=true).
// --throw-once TAG: the handler throws on the first delivery of messages with that tag (ali-ons
// catches it, reports it as an 'error' event, and sends the message back the same way).
// --namespace NS: ali-ons' namespace option (group and topic NS%<name> on the wire; ali-ons
// reports msg.topic as stored, with the namespace).
// --message-model BROADCASTING: ali-ons' isBroadcast (every consumer of the group takes every
// queue, offsets kept in memory; ali-ons then keeps the instance name DEFAULT, so the client id is
// <ip>@DEFAULT in every process).
// Lines: "started" (clientId) once the client is ready; "rebalanced" (the queues of --topic this
// client now owns, each with the next offset it pulls) after every allocation change; "message"
// per delivery; "stopped" on SIGTERM or SIGINT (exit 0) and "deadline" when --deadline seconds
// pass first (exit 3).

const { Consumer } = require('ali-ons');
const { parseArgs, emit, describeError, makeLogger, httpclient, exit, credentials } = require('./common');

async function main() {
  const args = parseArgs(process.argv.slice(2), {
    namesrv: null,
    topic: null,
    group: null,
    expression: '*',
    deadline: 60,
    // ali-ons rebalances on a timer only (default 10 s): it does not act on the broker's
    // NOTIFY_CONSUMER_IDS_CHANGED. A short interval keeps the tests quick.
    rebalanceInterval: 1000,
    consumeFrom: 'CONSUME_FROM_FIRST_OFFSET',
    // Messages with this tag fail their first delivery (ACTION_RETRY: sent back to the broker).
    failOnce: '',
    // Messages with this tag make the handler throw on their first delivery.
    throwOnce: '',
    // A SQL92 expression: subscribe with { expressionType: 'SQL92', subString } instead.
    sql: '',
    // CLUSTERING or BROADCASTING.
    messageModel: 'CLUSTERING',
    namespace: '',
    // RocketMQ's ACL: sign every request with these keys (ali-ons adds OnsChannel=ALIYUN).
    accessKey: '',
    secretKey: '',
  });
  const consumer = new Consumer({
    httpclient,
    nameSrv: args.namesrv.split(';'),
    consumerGroup: args.group,
    logger: makeLogger(),
    ...credentials(args),
    rebalanceInterval: args.rebalanceInterval,
    consumeFromWhere: args.consumeFrom,
    isBroadcast: args.messageModel === 'BROADCASTING',
    namespace: args.namespace,
  });
  consumer.on('error', err => emit('client_error', describeError(err)));

  const ownedQueues = () => {
    const queues = [];
    for (const { messageQueue, nextOffset } of consumer.processQueueTable.values()) {
      if (messageQueue.topic === args.topic) {
        const { brokerName: broker, queueId } = messageQueue;
        queues.push({ broker, queueId, offset: nextOffset });
      }
    }
    queues.sort((a, b) => (a.broker === b.broker ? a.queueId - b.queueId : a.broker < b.broker ? -1 : 1));
    return queues;
  };
  consumer.on(`topic_${args.topic}_queue_changed`, () => {
    emit('rebalanced', { clientId: consumer.clientId, topic: args.topic, queues: ownedQueues() });
  });

  const subscription = args.sql ? { expressionType: 'SQL92', subString: args.sql } : args.expression;
  consumer.subscribe(args.topic, subscription, async (msg, mq) => {
    const retry = !!args.failOnce && msg.tags === args.failOnce && msg.reconsumeTimes === 0;
    const raise = !!args.throwOnce && msg.tags === args.throwOnce && msg.reconsumeTimes === 0;
    emit('message', {
      action: raise ? 'throw' : retry ? 'retry' : 'ok',
      clientId: consumer.clientId,
      topic: msg.topic,
      tags: msg.tags || null,
      keys: msg.keys || null,
      body: msg.body ? msg.body.toString('utf8') : null,
      msgId: msg.msgId,
      broker: mq && mq.brokerName,
      queueId: msg.queueId,
      queueOffset: Number(msg.queueOffset),
      reconsumeTimes: msg.reconsumeTimes,
      sysFlag: msg.sysFlag,
      properties: msg.properties,
    });
    if (raise) {
      throw new Error(`handler fails ${msg.msgId} on purpose (--throw-once)`);
    }
    return retry ? Consumer.ACTION_RETRY : undefined;
  });

  let stopping = false;
  const stop = async (reason, code) => {
    if (stopping) {
      return;
    }
    stopping = true;
    const hardStop = setTimeout(() => {
      emit('stopped', { reason, clean: false });
      exit(code);
    }, 10000);
    try {
      await consumer.close();
    } catch (err) {
      emit('client_error', describeError(err));
    }
    clearTimeout(hardStop);
    emit('stopped', { reason, clean: true });
    exit(code);
  };
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  setTimeout(() => {
    emit('deadline', { seconds: args.deadline });
    stop('deadline', 3);
  }, args.deadline * 1000);

  await consumer.ready();
  emit('started', {
    clientId: consumer.clientId,
    group: args.group,
    topic: args.topic,
    expression: args.expression,
  });
}

main().catch(err => {
  emit('fatal', describeError(err));
  process.stderr.write(`${err && err.stack}\n`);
  exit(2);
});
