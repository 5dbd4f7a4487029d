// Context keys the session view provides to components deep in the feed.

/** The session id (a string), for components such as the Listen button that call session endpoints. */
export const SESSION_ID = Symbol('piface.session.id');
