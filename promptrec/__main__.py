from promptrec.cli import main

main()
