// Drive @segment/analytics-node against the recorder: node node_next_calls.js HOST PADDING
const { Analytics } = require('@segment/analytics-node')
const s = require('./scenario.json')
const [host, padding] = [process.argv[2], Number(process.argv[3])]
const analytics = new Analytics({ writeKey: s.writeKey, host, flushAt: 20, maxRetries: 0 })
const traits = { ...s.traits, createdAt: new Date('2023-11-02T08:15:00Z') }
analytics.on('error', (err) => { console.error(err); process.exitCode = 1 })

analytics.identify({ userId: s.userId, traits })
analytics.track({ userId: s.userId, event: 'Order Completed', properties: s.order })
// An anonymous server event: userId passed as null, as a server app does for a guest.
analytics.track({ userId: null, anonymousId: s.anonymousId, event: 'Product Viewed',
  properties: { product_id: '507f1f77bcf86cd799439011' } })
analytics.page({ userId: s.userId, ...s.page })
analytics.screen({ userId: s.userId, ...s.screen })
analytics.group({ userId: s.userId, groupId: s.groupId, traits: s.groupTraits })
analytics.alias({ userId: s.userId, previousId: s.previousId })
analytics.track({ userId: s.userId, event: 'Trial Started',
  properties: { trial_plan_name: 'premium' }, timestamp: new Date(s.historicalTimestamp) })
if (padding) {
  // An export's first rows as CSV, cut to the length asked for.
  const rows = Array.from({ length: 4999 }, (_, n) => `${n + 1},customer_${n + 1},${(n + 1) * 7 % 1000}.00`).join(';')
  analytics.track({ userId: s.userId, event: s.bigEventName,
    properties: { report_id: 'rpt_7731', format: 'csv', preview: rows.slice(0, padding) } })
}
analytics.closeAndFlush().then(() => console.log('flushed'))
