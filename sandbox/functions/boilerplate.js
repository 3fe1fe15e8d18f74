// A subscription function: Segment calls one handler per event type with the
// event and the subscription's settings (settings.apiKey, then your own).
// Return a value to succeed (it is shown as the Callback Return); throw one of
// EventNotSupported, InvalidEventPayload, ValidationError or RetryError to say
// why not. A non-2xx answer from fetch does not throw: check response.status.

const ENDPOINT = '__ENDPOINT__'; // replace with your API

async function send(event, settings) {
	let response;
	try {
		response = await fetch(ENDPOINT, {
			method: 'POST',
			headers: {
				Authorization: `Basic ${btoa(settings.apiKey + ':')}`,
				'Content-Type': 'application/json'
			},
			body: JSON.stringify(event)
		});
	} catch (error) {
		// The request got no answer: let Segment try again later.
		throw new RetryError(error.message);
	}
	if (response.status >= 500 || response.status === 429) {
		// Server errors and rate limits are worth another try.
		throw new RetryError(`Failed with ${response.status}`);
	}
	return response.text();
}

/**
 * Handle a track event
 * @param {SegmentTrackEvent} event
 * @param {FunctionSettings} settings
 */
async function onTrack(event, settings) {
	return send(event, settings);
}

/**
 * Handle an identify event
 * @param {SegmentIdentifyEvent} event
 * @param {FunctionSettings} settings
 */
async function onIdentify(event, settings) {
	return send(event, settings);
}

/**
 * Handle a page event
 * @param {SegmentPageEvent} event
 * @param {FunctionSettings} settings
 */
async function onPage(event, settings) {
	throw new EventNotSupported('page is not supported');
}

/**
 * Handle a screen event
 * @param {SegmentScreenEvent} event
 * @param {FunctionSettings} settings
 */
async function onScreen(event, settings) {
	throw new EventNotSupported('screen is not supported');
}

/**
 * Handle a group event
 * @param {SegmentGroupEvent} event
 * @param {FunctionSettings} settings
 */
async function onGroup(event, settings) {
	throw new EventNotSupported('group is not supported');
}

/**
 * Handle an alias event
 * @param {SegmentAliasEvent} event
 * @param {FunctionSettings} settings
 */
async function onAlias(event, settings) {
	throw new EventNotSupported('alias is not supported');
}

/**
 * Handle a delete event: remove everything you hold about event.userId
 * @param {SegmentDeleteEvent} event
 * @param {FunctionSettings} settings
 */
async function onDelete(event, settings) {
	throw new EventNotSupported('delete is not supported');
}
