"""Small verifiable tasks beyond chess for the LM trainers (`tinyreason.lm.tasks.Task`): examples of
the pattern a user follows to bring their own (`arithmetic`: a+b= -> the sum)."""
