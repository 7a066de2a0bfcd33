-- People at the desk: a person chooses a six-digit desk PIN at head office; its Argon2id hash
-- goes to the business's desks (with the person's name and what their roles allow) so they
-- can sign in at a desk that is offline and switch quickly at a shared till. Every outbox
-- entry written while someone is signed in names them; the change log keeps who it was.
ALTER TABLE users
    ADD COLUMN pin_hash       text        NULL CHECK (pin_hash LIKE '$argon2id$%'),
    ADD COLUMN pin_changed_at timestamptz NULL;

-- The person who made the change at the desk (NULL: a desk no one had to sign in to).
ALTER TABLE changes ADD COLUMN actor_id uuid NULL;
