-- Every change to a token reaches every service process in the commit that makes it.
--
-- Service processes remember the principals of tokens they have seen (service/auth.py,
-- TokenCache) and forget them all on a notification on `fraudblock_tokens`. Until now only
-- `fraudblock token revoke` notified; a token revoked, re-scoped or deleted directly in SQL kept
-- working from memory for up to the cache's lifetime. A trigger notifies on every path.

CREATE FUNCTION tokens_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('fraudblock_tokens', '');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('fraudblock_tokens', OLD.id::text);
    ELSE
        PERFORM pg_notify('fraudblock_tokens', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

-- an UPDATE of any column: a revocation, and also a changed role, unit, operator or hash
CREATE TRIGGER tokens_notify_change AFTER UPDATE OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION tokens_notify_change();
CREATE TRIGGER tokens_notify_truncate AFTER TRUNCATE ON tokens
    FOR EACH STATEMENT EXECUTE FUNCTION tokens_notify_change();
