-- Usernames are case-insensitive (issue 10 F4): stored lowercased, so the unique index on
-- "username" is unique regardless of case, and login looks the lowercased name up.
--
-- Users whose names differ only by case cannot be merged automatically (they are different
-- people with different passwords and roles): the migration stops, names them, and changes
-- nothing. The clash check runs first, so no row is touched when it fails.
DO $$
DECLARE
  clashes TEXT;
BEGIN
  SELECT string_agg(names, '; ' ORDER BY names) INTO clashes
  FROM (
    SELECT string_agg(format('%s (id %s)', "username", "id"), ', ' ORDER BY "username") AS names
    FROM "users"
    GROUP BY lower("username")
    HAVING count(*) > 1
  ) AS groups;
  IF clashes IS NOT NULL THEN
    RAISE EXCEPTION 'usernames are now case-insensitive, and these users differ only by case: %. Rename all but one of each group, e.g. UPDATE users SET username = ''<new name>'' WHERE id = ''<id>''; then migrate again', clashes
      USING ERRCODE = 'unique_violation';
  END IF;
END $$;

UPDATE "users" SET "username" = lower("username") WHERE "username" <> lower("username");

-- Keeps it so for writes that bypass Keyward's UserService.
ALTER TABLE "users" ADD CONSTRAINT "users_username_lowercase" CHECK ("username" = lower("username"));
