-- Subjects a receiver removed from its stream (SSF 1.0 §8.1.3.3), as a JSON list of
-- {user, application, session} filters: SETs about a matching subject are not queued for it.
ALTER TABLE ssf_streams ADD COLUMN excluded_subjects TEXT NOT NULL DEFAULT '[]';
