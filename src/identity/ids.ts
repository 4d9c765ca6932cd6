/** An RFC 9562 UUID, the id of users and resource servers; hex digits in either case (§4). */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(text: string): boolean {
  return UUID.test(text);
}

/**
 * A client_id: RFC 3986 unreserved characters, so it needs no escaping in a path segment or in
 * HTTP Basic credentials. Generated ids have 22 characters.
 */
export const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;

/** The shortest client_id an operator may choose (the bootstrap admin's, from the environment). */
export const CHOSEN_CLIENT_ID_MIN = 3;
