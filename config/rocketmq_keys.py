"""Keys RocketMQ's own broker and name server read from their config files.

RocketMQ loads a ``broker.conf`` / ``namesrv.conf`` into several config objects at once
(``MixAll.properties2Object``: each key sets the field of that name where there is one, and a
key no object has is ignored). These are the field names of those objects in RocketMQ 4.x and
5.x (names only), so that actormq can tell a RocketMQ key it does not implement (ignored with a
warning, as RocketMQ would have read it) from a key neither knows (a mistake).

Broker: ``BrokerConfig`` (with 5.x's ``BrokerIdentity``), ``MessageStoreConfig``,
``NettyServerConfig``, ``NettyClientConfig``. Name server: ``NamesrvConfig``,
``NettyServerConfig``, ``NettyClientConfig`` and 5.x's ``ControllerConfig`` (a name server with
``enableControllerInNamesrv`` reads it from the same file). Collected from apache/rocketmq
4.9 and 5.1 sources; a key added to RocketMQ later is reported as unknown until listed here.
"""

from __future__ import annotations


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


NETTY_SERVER_KEYS = _names(
    """
    bindAddress listenPort serverWorkerThreads serverCallbackExecutorThreads
    serverSelectorThreads serverOnewaySemaphoreValue serverAsyncSemaphoreValue
    serverChannelMaxIdleTimeSeconds serverSocketSndBufSize serverSocketRcvBufSize
    writeBufferHighWaterMark writeBufferLowWaterMark serverSocketBacklog
    serverPooledByteBufAllocatorEnable useEpollNativeSelector
    """
)

NETTY_CLIENT_KEYS = _names(
    """
    clientWorkerThreads clientCallbackExecutorThreads clientOnewaySemaphoreValue
    clientAsyncSemaphoreValue connectTimeoutMillis channelNotActiveInterval
    clientChannelMaxIdleTimeSeconds clientSocketSndBufSize clientSocketRcvBufSize
    clientPooledByteBufAllocatorEnable clientCloseSocketIfTimeout useTLS socksProxyConfig
    writeBufferHighWaterMark writeBufferLowWaterMark disableCallbackExecutor
    disableNettyWorkerGroup
    """
)

BROKER_CONFIG_KEYS = _names(
    """
    brokerName brokerClusterName brokerId isBrokerContainer
    brokerConfigPath rocketmqHome namesrvAddr listenPort brokerIP1 brokerIP2
    recoverConcurrently brokerPermission defaultTopicQueueNums autoCreateTopicEnable
    clusterTopicEnable brokerTopicEnable autoCreateSubscriptionGroup messageStorePlugIn
    msgTraceTopicName traceTopicEnable sendMessageThreadPoolNums
    putMessageFutureThreadPoolNums pullMessageThreadPoolNums litePullMessageThreadPoolNums
    ackMessageThreadPoolNums processReplyMessageThreadPoolNums queryMessageThreadPoolNums
    adminBrokerThreadPoolNums clientManageThreadPoolNums consumerManageThreadPoolNums
    loadBalanceProcessorThreadPoolNums heartbeatThreadPoolNums recoverThreadPoolNums
    endTransactionThreadPoolNums flushConsumerOffsetInterval
    flushConsumerOffsetHistoryInterval rejectTransactionMessage fetchNameSrvAddrByDnsLookup
    fetchNamesrvAddrByAddressServer sendThreadPoolQueueCapacity putThreadPoolQueueCapacity
    pullThreadPoolQueueCapacity litePullThreadPoolQueueCapacity ackThreadPoolQueueCapacity
    replyThreadPoolQueueCapacity queryThreadPoolQueueCapacity
    clientManagerThreadPoolQueueCapacity consumerManagerThreadPoolQueueCapacity
    heartbeatThreadPoolQueueCapacity endTransactionPoolQueueCapacity
    adminBrokerThreadPoolQueueCapacity loadBalanceThreadPoolQueueCapacity filterServerNums
    longPollingEnable shortPollingTimeMills notifyConsumerIdsChangedEnable highSpeedMode
    commercialEnable commercialTimerCount commercialTransCount commercialBigCount
    commercialBaseCount commercialSizePerMsg accountStatsEnable accountStatsPrintZeroValues
    transferMsgByHeap maxDelayTime regionId registerBrokerTimeoutMills
    sendHeartbeatTimeoutMillis slaveReadEnable disableConsumeIfConsumerReadSlowly
    consumerFallbehindThreshold brokerFastFailureEnable waitTimeMillsInSendQueue
    waitTimeMillsInPullQueue waitTimeMillsInLitePullQueue waitTimeMillsInHeartbeatQueue
    waitTimeMillsInTransactionQueue waitTimeMillsInAckQueue startAcceptSendRequestTimeStamp
    traceOn enableCalcFilterBitMap rejectPullConsumerEnable expectConsumerNumUseFilter
    maxErrorRateOfBloomFilter filterDataCleanTimeSpan filterSupportRetry
    enablePropertyFilter compressedRegister forceRegister registerNameServerPeriod
    brokerHeartbeatInterval brokerNotActiveTimeoutMillis enableNetWorkFlowControl
    enableBroadcastOffsetStore broadcastOffsetExpireSecond broadcastOffsetExpireMaxSecond
    popPollingSize popPollingMapSize maxPopPollingSize reviveQueueNum reviveInterval
    reviveMaxSlow reviveScanTime enableSkipLongAwaitingAck reviveAckWaitMs enablePopLog
    enablePopBufferMerge popCkStayBufferTime popCkStayBufferTimeOut popCkMaxBufferSize
    popCkOffsetMaxQueueSize enablePopBatchAck enableNotifyAfterPopOrderLockRelease
    initPopOffsetByCheckMsgInMem realTimeNotifyConsumerChange litePullMessageEnable
    syncBrokerMemberGroupPeriod loadBalancePollNameServerInterval cleanOfflineBrokerInterval
    serverLoadBalancerEnable defaultMessageRequestMode defaultPopShareQueueNum
    transactionTimeOut transactionCheckMax transactionCheckInterval transactionOpMsgMaxSize
    transactionOpBatchInterval aclEnable storeReplyMessageEnable enableDetailStat
    autoDeleteUnusedStats isolateLogEnable forwardTimeout enableSlaveActingMaster
    enableRemoteEscape skipPreOnline asyncSendEnable useServerSideResetOffset
    consumerOffsetUpdateVersionStep delayOffsetUpdateVersionStep lockInStrictMode
    compatibleWithOldNameSrv enableControllerMode controllerAddr
    fetchControllerAddrByDnsLookup syncBrokerMetadataPeriod checkSyncStateSetPeriod
    syncControllerMetadataPeriod controllerHeartBeatTimeoutMills
    validateSystemTopicWhenUpdateTopic brokerElectionPriority useStaticSubscription
    metricsExporterType metricsOtelCardinalityLimit metricsGrpcExporterTarget
    metricsGrpcExporterHeader metricGrpcExporterTimeOutInMills
    metricGrpcExporterIntervalInMills metricLoggingExporterIntervalInMills
    metricsPromExporterPort metricsPromExporterHost metricsLabel metricsInDelta
    channelExpiredTimeout subscriptionExpiredTimeout estimateAccumulation
    coldCtrStrategyEnable usePIDColdCtrStrategy cgColdReadThreshold globalColdReadThreshold
    fetchNamesrvAddrInterval popResponseReturnActualRetryTopic enableSingleTopicRegister
    enableMixedMessageType enableSplitRegistration splitRegistrationSize
    """
)

MESSAGE_STORE_KEYS = _names(
    """
    storePathRootDir storePathCommitLog storePathDLedgerCommitLog storePathEpochFile
    storePathBrokerIdentity readOnlyCommitLogStorePaths mapedFileSizeCommitLog
    mappedFileSizeCommitLog compactionMappedFileSize compactionCqMappedFileSize
    compactionScheduleInternal maxOffsetMapSize compactionThreadNum enableCompaction
    mappedFileSizeTimerLog timerPrecisionMs timerRollWindowSlot timerFlushIntervalMs
    timerGetMessageThreadNum timerPutMessageThreadNum timerEnableDisruptor
    timerEnableCheckMetrics timerInterceptDelayLevel timerMaxDelaySec timerWheelEnable
    disappearTimeAfterStart timerStopEnqueue timerCheckMetricsWhen timerSkipUnknownError
    timerWarmEnable timerStopDequeue timerCongestNumEachSlot timerMetricSmallThreshold
    timerProgressLogIntervalMs storeType mapedFileSizeConsumeQueue
    mappedFileSizeConsumeQueue enableConsumeQueueExt mappedFileSizeConsumeQueueExt
    mapperFileSizeBatchConsumeQueue bitMapLengthConsumeQueueExt flushIntervalCommitLog
    commitIntervalCommitLog maxRecoveryCommitlogFiles diskSpaceWarningLevelRatio
    diskSpaceCleanForciblyRatio useReentrantLockWhenPutMessage flushCommitLogTimed
    flushIntervalConsumeQueue cleanResourceInterval deleteCommitLogFilesInterval
    deleteConsumeQueueFilesInterval destroyMapedFileIntervalForcibly
    redeleteHangedFileInterval deleteWhen diskMaxUsedSpaceRatio fileReservedTime
    deleteFileBatchMax putMsgIndexHightWater maxMessageSize checkCRCOnRecover
    flushCommitLogLeastPages commitCommitLogLeastPages flushLeastPagesWhenWarmMapedFile
    flushConsumeQueueLeastPages flushCommitLogThoroughInterval
    commitCommitLogThoroughInterval flushConsumeQueueThoroughInterval
    maxTransferBytesOnMessageInMemory maxTransferCountOnMessageInMemory
    maxTransferBytesOnMessageInDisk maxTransferCountOnMessageInDisk
    accessMessageInMemoryMaxRatio messageIndexEnable maxHashSlotNum maxIndexNum
    maxMsgsNumBatch messageIndexSafe haListenPort haSendHeartbeatInterval
    haHousekeepingInterval haTransferBatchSize haMasterAddress haSlaveFallbehindMax
    haMaxGapNotInSync brokerRole flushDiskType syncFlushTimeout putMessageTimeout
    slaveTimeout messageDelayLevel flushDelayOffsetInterval cleanFileForciblyEnable
    warmMapedFileEnable offsetCheckInSlave debugLockEnable duplicationEnable
    diskFallRecorded osPageCacheBusyTimeOutMills defaultQueryMaxNum transientStorePoolEnable
    transientStorePoolSize fastFailIfNoBufferInStorePool enableDLegerCommitLog dLegerGroup
    dLegerPeers dLegerSelfId preferredLeaderId enableBatchPush isEnableBatchPush
    enableScheduleMessageStats enableLmq enableMultiDispatch maxLmqConsumeQueueNum
    enableScheduleAsyncDeliver scheduleAsyncDeliverMaxPendingLimit
    scheduleAsyncDeliverMaxResendNum2Blocked maxBatchDeleteFilesNum dispatchCqThreads
    dispatchCqCacheNum enableAsyncReput recheckReputOffsetFromCq maxTopicLength
    autoMessageVersionOnTopicLen travelCqFileNumWhenGetMessage
    correctLogicMinOffsetSleepInterval correctLogicMinOffsetForceInterval
    mappedFileSwapEnable commitLogForceSwapMapInterval commitLogSwapMapInterval
    commitLogSwapMapReserveFileNum logicQueueForceSwapMapInterval logicQueueSwapMapInterval
    cleanSwapedMapInterval logicQueueSwapMapReserveFileNum searchBcqByCacheEnable
    dispatchFromSenderThread wakeCommitWhenPutMessage wakeFlushWhenPutMessage
    enableCleanExpiredOffset maxAsyncPutMessageRequests pullBatchMaxMessageCount
    totalReplicas inSyncReplicas minInSyncReplicas allAckInSyncStateSet
    enableAutoInSyncReplicas haFlowControlEnable maxHaTransferByteInSecond
    haMaxTimeSlaveNotCatchup syncMasterFlushOffsetWhenStartup maxChecksumRange
    replicasPerDiskPartition logicalDiskSpaceCleanForciblyThreshold maxSlaveResendLength
    syncFromLastFile asyncLearner maxConsumeQueueScan sampleCountThreshold
    coldDataFlowControlEnable coldDataScanEnable dataReadAheadEnable
    timerColdDataCheckIntervalMs sampleSteps accessMessageInMemoryHotRatio
    enableBuildConsumeQueueConcurrently batchDispatchRequestThreadPoolNums
    realTimePersistRocksDBConfig memTableFlushInterval enableRocksDBLog topicQueueLockNum
    """
)

NAMESRV_CONFIG_KEYS = _names(
    """
    rocketmqHome kvConfigPath configStorePath productEnvName clusterTest orderMessageEnable
    returnOrderTopicConfigToBroker clientRequestThreadPoolNums defaultThreadPoolNums
    clientRequestThreadPoolQueueCapacity defaultThreadPoolQueueCapacity
    scanNotActiveBrokerInterval unRegisterBrokerQueueCapacity supportActingMaster
    enableAllTopicList enableTopicList notifyMinBrokerIdChanged enableControllerInNamesrv
    needWaitForService waitSecondsForService deleteTopicWithBrokerRegistration
    """
)

CONTROLLER_KEYS = _names(
    """
    rocketmqHome configStorePath controllerType scanNotActiveBrokerInterval
    controllerThreadPoolNums controllerRequestThreadPoolQueueCapacity controllerDLegerGroup
    controllerDLegerPeers controllerDLegerSelfId mappedFileSize controllerStorePath
    electMasterMaxRetryCount enableElectUncleanMaster isProcessReadEvent processReadEvent
    notifyBrokerRoleChanged scanInactiveMasterInterval metricsExporterType
    metricsGrpcExporterTarget metricsGrpcExporterHeader metricGrpcExporterTimeOutInMills
    metricGrpcExporterIntervalInMills metricLoggingExporterIntervalInMills
    metricsPromExporterPort metricsPromExporterHost metricsLabel metricsInDelta
    configBlackList
    """
)

BROKER_FILE_KEYS = BROKER_CONFIG_KEYS | MESSAGE_STORE_KEYS | NETTY_SERVER_KEYS | NETTY_CLIENT_KEYS
"""Every key a RocketMQ broker reads from its config file."""

NAMESRV_FILE_KEYS = NAMESRV_CONFIG_KEYS | NETTY_SERVER_KEYS | NETTY_CLIENT_KEYS | CONTROLLER_KEYS
"""Every key a RocketMQ name server reads from its config file."""
